"""build.customize: root access, operator scripts, image hygiene and module trees (no chroot)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from livestrap.builder import customize, slim
from livestrap.errors import BuildError
from livestrap.spec import parse_spec

pytestmark = pytest.mark.unit

SHADOW = (
    "daemon:*:19800:0:99999:7:::\n"
    "rootless:*:19800:0:99999:7:::\n"
    "root:*:19800:0:99999:7:::\n"
    "nobody:*:19800:0:99999:7:::\n"
)
HASH = "$y$j9T$abcdefgh$ABCDEFGHIJ0123456789./"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyDataOnly0123456789abcdef op@example.test"


# -- /etc/shadow ------------------------------------------------------------------------------


def test_set_root_shadow_locked() -> None:
    assert customize.set_root_shadow(SHADOW, None) == SHADOW.replace(
        "root:*:19800", "root:!*:19800"
    )


def test_set_root_shadow_with_hash() -> None:
    out = customize.set_root_shadow(SHADOW, HASH)
    assert out.splitlines() == [
        "daemon:*:19800:0:99999:7:::",
        "rootless:*:19800:0:99999:7:::",
        f"root:{HASH}:19800:0:99999:7:::",
        "nobody:*:19800:0:99999:7:::",
    ]
    assert out.endswith(":::\n")


def test_set_root_shadow_without_trailing_newline() -> None:
    assert customize.set_root_shadow("root:x:1::::::", None) == "root:!*:1::::::\n"


def test_set_root_shadow_missing_root() -> None:
    with pytest.raises(BuildError, match="no root entry in /etc/shadow") as exc:
        customize.set_root_shadow("daemon:*:19800:0:99999:7:::\nrootless:*:1::::::\n", HASH)
    assert exc.value.stage == "customize"


def make_rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for d in ("etc/ssh", "usr/sbin", "tmp", "root"):
        (root / d).mkdir(parents=True)
    (root / "etc/shadow").write_text(SHADOW)
    return root


def test_write_root_access_with_sshd(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path)
    (root / "usr/sbin/sshd").write_text("")
    (root / "etc/ssh/ssh_host_ed25519_key").write_text("private")
    (root / "etc/ssh/ssh_host_ed25519_key.pub").write_text("public")
    (root / "etc/ssh/sshd_config").write_text("# stays\n")
    spec = parse_spec({"ssh_authorized_keys": [SSH_KEY], "root_password_hash": HASH})
    customize.write_root_access(root, spec)

    assert f"root:{HASH}:" in (root / "etc/shadow").read_text()
    assert (root / "etc/shadow").stat().st_mode & 0o777 == 0o640
    keys = root / "root/.ssh/authorized_keys"
    assert keys.read_text() == f"{SSH_KEY}\n"
    assert keys.stat().st_mode & 0o777 == 0o600
    assert (root / "root/.ssh").stat().st_mode & 0o777 == 0o700
    assert (root / "etc/ssh/sshd_config.d/livestrap.conf").read_text() == customize.SSHD_DROPIN
    dropin = root / "etc/systemd/system/ssh.service.d/livestrap-hostkeys.conf"
    assert dropin.read_text() == customize.SSH_KEYGEN_DROPIN
    assert sorted(p.name for p in (root / "etc/ssh").iterdir()) == [
        "sshd_config",
        "sshd_config.d",
    ]


def test_write_root_access_without_sshd_or_keys(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path)
    customize.write_root_access(root, parse_spec({}))
    assert "root:!*:" in (root / "etc/shadow").read_text()
    assert not (root / "root/.ssh").exists()
    assert not (root / "etc/ssh/sshd_config.d").exists()


def test_copy_extra_dirs_merges_and_keeps_symlinks(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path)
    extra = tmp_path / "overlay"
    (extra / "etc/motd.d").mkdir(parents=True)
    (extra / "etc/motd.d/10-hello").write_text("hello\n")
    (extra / "etc/link").symlink_to("/nonexistent/target")
    customize.copy_extra_dirs(root, [extra])
    assert (root / "etc/motd.d/10-hello").read_text() == "hello\n"
    assert os.readlink(root / "etc/link") == "/nonexistent/target"
    assert (root / "etc/shadow").read_text() == SHADOW


# -- chroot and scripts -----------------------------------------------------------------------


def test_chroot_argv_shape() -> None:
    argv = customize.chroot_argv(Path("/b/rootfs"), ["/tmp/script", "arg one"])
    assert argv == [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        customize.CHROOT_SCRIPT,
        "livestrap-chroot",
        "/b/rootfs",
        "/tmp/script",
        "arg one",
    ]
    assert customize.CHROOT_SCRIPT.startswith("set -e;")
    assert customize.CHROOT_SCRIPT.endswith('exec chroot "$R" "$@"')


def test_run_scripts(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path)
    scripts = []
    for name in ("setup.sh", "more.sh"):
        script = tmp_path / name
        script.write_text(f"#!/bin/sh\necho {name}\n")
        script.chmod(0o644)
        scripts.append(script)
    policy = root / "usr/sbin/policy-rc.d"
    calls: list[list[str]] = []

    def fake_run_in_chroot(command: list[str]) -> None:
        calls.append(command)
        inside = root / command[0].lstrip("/")
        assert inside.parent == root / "tmp"
        assert inside.read_text().startswith("#!/bin/sh\necho ")
        assert inside.stat().st_mode & 0o777 == 0o755
        assert policy.read_text() == customize.POLICY_RC_D
        assert policy.stat().st_mode & 0o777 == 0o755

    customize.run_scripts(root, scripts, fake_run_in_chroot)
    assert calls == [["/tmp/livestrap-script-0-setup.sh"], ["/tmp/livestrap-script-1-more.sh"]]
    assert list((root / "tmp").iterdir()) == []
    assert not policy.exists()


def test_run_scripts_failure_still_cleans_up(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path)
    script = tmp_path / "fail.sh"
    script.write_text("#!/bin/sh\nexit 1\n")

    def failing(command: list[str]) -> None:
        raise BuildError("customize", "script failed")

    with pytest.raises(BuildError, match="script failed"):
        customize.run_scripts(root, [script, script], failing)
    assert list((root / "tmp").iterdir()) == []
    assert not (root / "usr/sbin/policy-rc.d").exists()


def test_run_scripts_keeps_an_existing_policy(tmp_path: Path) -> None:
    root = make_rootfs(tmp_path)
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 0\n")
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\n")
    customize.run_scripts(root, [script], lambda command: None)
    assert policy.read_text() == "#!/bin/sh\nexit 0\n"


def test_run_scripts_without_scripts_touches_nothing(tmp_path: Path) -> None:
    def never(command: list[str]) -> None:
        raise AssertionError("must not run")

    customize.run_scripts(tmp_path / "no-rootfs", [], never)
    assert not (tmp_path / "no-rootfs").exists()


# -- clean_image ------------------------------------------------------------------------------


def write(path: Path, text: str = "x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize("resolv", ["file", "dangling-symlink", "missing"])
def test_clean_image(tmp_path: Path, resolv: str) -> None:
    root = tmp_path / "rootfs"
    outside = tmp_path / "outside"
    write(outside / "precious")
    write(root / "etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    write(root / "etc/hostname", "builder\n")
    (root / "var/lib/dbus").mkdir(parents=True)
    (root / "var/lib/dbus/machine-id").symlink_to("/etc/machine-id")
    if resolv == "file":
        write(root / "etc/resolv.conf", "nameserver 192.0.2.1\n")
    elif resolv == "dangling-symlink":
        (root / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    write(root / "var/lib/apt/lists/mirror.example.test_debian_dists_bookworm_InRelease")
    write(root / "var/lib/apt/lists/partial/half")
    write(root / "var/lib/apt/lists/lock", "")
    write(root / "var/cache/apt/archives/curl_8.0_amd64.deb")
    write(root / "var/cache/apt/archives/partial/x.deb")
    write(root / "var/cache/apt/pkgcache.bin")
    write(root / "var/cache/apt/srcpkgcache.bin")
    write(root / "var/cache/debconf/config.dat")
    write(root / "var/cache/debconf/config.dat-old")
    write(root / "tmp/leftover/deep/file")
    (root / "tmp/outside-link").symlink_to(outside)
    write(root / "var/tmp/x")
    write(root / "var/log/apt/history.log")
    write(root / "var/log/dpkg.log")
    write(root / "var/cache/ldconfig/aux-cache")
    write(root / "var/cache/ldconfig/keep")
    write(root / "var/lib/systemd/random-seed")
    write(root / "var/log/alternatives.log")
    write(root / "var/log/README")

    customize.clean_image(root)

    assert (root / "etc/machine-id").read_text() == ""
    assert not os.path.lexists(root / "var/lib/dbus/machine-id")
    assert not os.path.lexists(root / "etc/resolv.conf")
    assert (root / "etc/hostname").read_text() == "localhost\n"  # not the build host's
    assert sorted(p.name for p in (root / "var/lib/apt/lists").iterdir()) == ["partial"]
    assert list((root / "var/lib/apt/lists/partial").iterdir()) == []
    assert sorted(p.name for p in (root / "var/cache/apt/archives").iterdir()) == ["partial"]
    assert list((root / "var/cache/apt/archives/partial").iterdir()) == []
    assert sorted(p.name for p in (root / "var/cache/apt").iterdir()) == ["archives"]
    assert sorted(p.name for p in (root / "var/cache/debconf").iterdir()) == ["config.dat"]
    assert list((root / "tmp").iterdir()) == []
    assert list((root / "var/tmp").iterdir()) == []
    assert list((root / "var/log/apt").iterdir()) == []
    assert [p.name for p in (root / "var/cache/ldconfig").iterdir()] == ["keep"]
    assert list((root / "var/lib/systemd").iterdir()) == []
    assert sorted(p.name for p in (root / "var/log").iterdir()) == ["README", "apt"]
    assert (outside / "precious").read_text() == "x"  # symlinks are removed, not followed


def test_clean_image_on_a_bare_tree(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    customize.clean_image(root)
    assert (root / "etc/machine-id").read_text() == ""
    assert (root / "var/lib/apt/lists/partial").is_dir()
    assert (root / "var/cache/apt/archives/partial").is_dir()


# -- module trees ---------------------------------------------------------------------------

KEPT = (
    "kernel/drivers/net/ethernet",
    "kernel/drivers/nvme",
    "kernel/drivers/scsi",
    "kernel/drivers/infiniband",
    "kernel/fs/squashfs",
    "kernel/fs/overlayfs",
    "kernel/fs/ext4",
    "kernel/net/ipv4",
)


def module_tree(base: Path, trees: tuple[str, ...]) -> None:
    for tree in trees:
        write(base / tree / "m.ko.xz")


@pytest.mark.parametrize("layout", ["usr/lib/modules", "lib/modules"])
def test_drop_module_trees(tmp_path: Path, layout: str) -> None:
    base = tmp_path / layout / "6.1.0-18-amd64"
    module_tree(base, ("kernel/net/wireless", "kernel/sound", "kernel/drivers/gpu", *KEPT))
    write(base / "modules.dep", "")
    removed = slim.drop_module_trees(tmp_path, "6.1.0-18-amd64")
    assert removed == ["kernel/drivers/gpu", "kernel/sound", "kernel/net/wireless"]
    for tree in KEPT:
        assert (base / tree / "m.ko.xz").is_file(), tree
    assert not (base / "kernel/sound").exists()
    assert (base / "modules.dep").is_file()


def test_drop_module_trees_without_modules(tmp_path: Path) -> None:
    assert slim.drop_module_trees(tmp_path, "6.1.0-18-amd64") == []


def test_needed_trees_are_never_dropped() -> None:
    """What live-boot's fetch= and a discovery node need must survive both slimming steps."""
    for tree in ("kernel/fs/squashfs", "kernel/fs/overlayfs", "kernel/drivers/net/ethernet"):
        assert tree not in slim.DROPPED_MODULE_TREES
        assert tree not in slim.INITRAMFS_DROPPED_TREES
    assert len(set(slim.DROPPED_MODULE_TREES)) == len(slim.DROPPED_MODULE_TREES)


def test_dpkg_excludes_cover_every_dropped_tree_in_both_layouts() -> None:
    excludes = slim.dpkg_excludes()
    for tree in slim.DROPPED_MODULE_TREES:
        assert f"path-exclude=/lib/modules/*/{tree}/*" in excludes
        assert f"path-exclude=/usr/lib/modules/*/{tree}/*" in excludes
    assert "path-exclude=/usr/lib/udev/hwdb.d/20-*" in excludes
    # storage and wired network drivers are never excluded
    for kept in ("kernel/drivers/net/ethernet", "kernel/drivers/scsi", "kernel/drivers/nvme"):
        assert not any(kept in opt for opt in excludes)


# -- masked units ---------------------------------------------------------------------------


def test_mask_units_masks_only_present_units(tmp_path: Path) -> None:
    units = tmp_path / "usr/lib/systemd/system"
    units.mkdir(parents=True)
    for name in ("fstrim.timer", "getty-static.service"):
        (units / name).write_text("[Unit]\n")
    masked = customize.mask_units(tmp_path, ("fstrim.timer", "getty-static.service", "nope.timer"))
    assert masked == ["fstrim.timer", "getty-static.service"]
    for name in masked:
        assert os.readlink(tmp_path / "etc/systemd/system" / name) == "/dev/null"
    assert not (tmp_path / "etc/systemd/system/nope.timer").exists()


def test_mask_units_leaves_the_operators_units_alone(tmp_path: Path) -> None:
    (tmp_path / "lib/systemd/system").mkdir(parents=True)
    (tmp_path / "lib/systemd/system/fstrim.timer").write_text("[Unit]\n")
    own = tmp_path / "etc/systemd/system/fstrim.timer"
    own.parent.mkdir(parents=True)
    own.write_text("[Timer]\nOnCalendar=daily\n")
    assert customize.mask_units(tmp_path, ("fstrim.timer",)) == []
    assert own.read_text() == "[Timer]\nOnCalendar=daily\n"


def test_masked_units_keep_the_consoles() -> None:
    kept = {"getty@.service", "serial-getty@.service", "ssh.service", "livestrap-agent.service"}
    assert not kept & set(customize.MASKED_UNITS)


@pytest.mark.security
def test_copy_extra_dirs_follows_no_link_to_the_host(tmp_path: Path) -> None:
    """A typical overlay over a usr-merged image whose own links are absolute: the
    overlay's links replace the image's, modes are kept, and the host is never written
    through a link (the image's absolute ones are resolved inside the image)."""
    root = make_rootfs(tmp_path)
    host = tmp_path / "host"
    host.mkdir()
    (root / "usr/lib/systemd/system").mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    (root / "etc/localtime").symlink_to("/usr/share/zoneinfo/Etc/UTC")
    (root / "etc/resolv.conf").symlink_to(host / "resolv.conf")  # as if absolute, to the host
    (root / "etc/alt").symlink_to(str(host))  # a folder link pointing out of the image
    (root / "etc/abs").symlink_to("/usr/lib")  # absolute: /usr/lib of the image
    extra = tmp_path / "overlay"
    (extra / "etc/alt").mkdir(parents=True)
    (extra / "etc/alt/x").write_text("x")
    (extra / "etc/localtime").symlink_to("/usr/share/zoneinfo/Europe/Paris")
    (extra / "etc/resolv.conf").write_text("nameserver 192.0.2.1\n")
    (extra / "lib/systemd/system").mkdir(parents=True)
    (extra / "lib/systemd/system/x.service").write_text("[Unit]\n")
    (extra / "etc/abs").mkdir()
    (extra / "etc/abs/y").write_text("y")
    (extra / "root/.ssh").mkdir(parents=True)
    (extra / "root/.ssh/authorized_keys").write_text("k\n")
    (extra / "root/.ssh/authorized_keys").chmod(0o600)
    (extra / "root/.ssh").chmod(0o700)
    extra.chmod(0o700)
    customize.copy_extra_dirs(root, [extra])
    assert list(host.iterdir()) == []
    assert os.readlink(root / "etc/localtime") == "/usr/share/zoneinfo/Europe/Paris"
    assert (root / "etc/resolv.conf").read_text() == "nameserver 192.0.2.1\n"
    assert not (root / "etc/resolv.conf").is_symlink()
    assert (root / host.relative_to("/") / "x").read_text() == "x"  # where the image has it
    assert (root / "usr/lib/systemd/system/x.service").read_text() == "[Unit]\n"
    assert (root / "usr/lib/y").read_text() == "y"
    assert (root / "root/.ssh").stat().st_mode & 0o7777 == 0o700
    assert (root / "root/.ssh/authorized_keys").stat().st_mode & 0o7777 == 0o600
    assert root.stat().st_mode & 0o7777 != 0o700  # the overlay's own folder mode is not /'s
