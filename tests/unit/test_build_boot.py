"""build.initramfs, build.squashfs and build.bootfiles: hooks, argv and initramfs checks."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from livestrap.builder import bootfiles, initramfs, slim, squashfs
from livestrap.errors import BuildError

pytestmark = pytest.mark.unit

# -- initramfs ------------------------------------------------------------------------------

SLIM_HOOK = """\
#!/bin/sh
# livestrap: drop module trees a network boot into a squashfs never needs
PREREQ=""
prereqs() { echo "$PREREQ"; }
case "$1" in prereqs) prereqs; exit 0;; esac
for base in "$DESTDIR"/usr/lib/modules/* "$DESTDIR"/lib/modules/*; do
\t[ -d "$base" ] || continue
\tfor tree in \\
\t\tkernel/sound \\
\t\tkernel/drivers/gpu \\
\t\t; do
\t\trm -rf "${base:?}/$tree"
\tdone
done
"""


def test_render_slim_hook_exact() -> None:
    assert initramfs.render_slim_hook(("kernel/sound", "kernel/drivers/gpu")) == SLIM_HOOK


@pytest.mark.parametrize(
    "trees",
    [("kernel/sound", "kernel/drivers/gpu"), slim.INITRAMFS_DROPPED_TREES, ()],
)
def test_slim_hook_is_valid_sh(tmp_path: Path, trees: tuple[str, ...]) -> None:
    hook = tmp_path / "livestrap-slim"
    hook.write_text(initramfs.render_slim_hook(trees))
    proc = subprocess.run(["sh", "-n", str(hook)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def run_hook(hook: Path, *args: str, destdir: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "DESTDIR": str(destdir)}
    return subprocess.run(
        ["sh", str(hook), *args], capture_output=True, text=True, env=env, timeout=10
    )


def test_slim_hook_prereqs(tmp_path: Path) -> None:
    hook = tmp_path / "livestrap-slim"
    hook.write_text(initramfs.render_slim_hook())
    proc = run_hook(hook, "prereqs", destdir=tmp_path / "nowhere")
    assert (proc.returncode, proc.stdout) == (0, "\n")


def test_slim_hook_drops_only_the_listed_trees(tmp_path: Path) -> None:
    dest = tmp_path / "initramfs"
    kernel = dest / "usr/lib/modules/6.1.0-18-amd64"
    for tree in ("kernel/sound/core", "kernel/drivers/gpu/drm", "kernel/drivers/net/ethernet"):
        (kernel / tree).mkdir(parents=True)
        (kernel / tree / "x.ko").write_text("")
    old_layout = dest / "lib/modules/5.10.0-28-amd64/kernel/sound"
    old_layout.mkdir(parents=True)
    hook = tmp_path / "livestrap-slim"
    hook.write_text(initramfs.render_slim_hook(("kernel/sound", "kernel/drivers/gpu")))
    proc = run_hook(hook, destdir=dest)
    assert proc.returncode == 0, proc.stderr
    assert not (kernel / "kernel/sound").exists()
    assert not (kernel / "kernel/drivers/gpu").exists()
    assert (kernel / "kernel/drivers/net/ethernet/x.ko").is_file()
    assert not old_layout.exists()


def test_divert_and_make_once_hooks_are_valid_sh() -> None:
    for script in (initramfs.divert_hook(), initramfs.make_once_hook()):
        proc = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


def test_live_hook_wrapper_answers_prereqs_and_runs_the_original(tmp_path: Path) -> None:
    original = tmp_path / "live~livestrap"
    original.write_text('#!/bin/sh\necho "ran with $*"\n')
    original.chmod(0o755)
    wrapper = tmp_path / "live"
    wrapper.write_text(initramfs.render_live_hook_wrapper(str(original)))
    wrapper.chmod(0o755)
    prereqs = subprocess.run([str(wrapper), "prereqs"], capture_output=True, text=True, timeout=5)
    assert (prereqs.returncode, prereqs.stdout) == (0, "\n")
    run = subprocess.run([str(wrapper)], capture_output=True, text=True, timeout=5)
    assert (run.returncode, run.stdout) == (0, "ran with \n")


def test_live_hook_wrapper_exact_text() -> None:
    assert initramfs.render_live_hook_wrapper("/x/live~livestrap") == (
        "#!/bin/sh\n"
        "# livestrap: answer prereqs here; live-boot's own hook does its whole work instead\n"
        'case "$1" in prereqs) echo; exit 0;; esac\n'
        'exec /x/live~livestrap "$@"\n'
    )


def test_divert_hook_writes_the_stub(tmp_path: Path) -> None:
    # everything after the dpkg-divert call, run against a scratch root
    script = initramfs.divert_hook().split(" && ", 1)[1]
    (tmp_path / "usr/sbin").mkdir(parents=True)
    subprocess.run(["sh", "-c", script, "hook", str(tmp_path)], check=True, timeout=10)
    stub = tmp_path / "usr/sbin/update-initramfs"
    assert stub.read_text() == initramfs.STUB
    assert stub.stat().st_mode & 0o777 == 0o755


# -- squashfs -------------------------------------------------------------------------------

EXCLUDES = ["-wildcards", "-e", "boot", "proc/*", "sys/*", "dev/*", "run/*", "tmp/*"]


@pytest.mark.parametrize(
    ("compression", "options"),
    [
        ("zstd", ["-comp", "zstd", "-Xcompression-level", "17"]),
        ("xz", ["-comp", "xz", "-Xbcj", "x86"]),
        ("lz4", ["-comp", "lz4", "-Xhc"]),
    ],
)
def test_mksquashfs_argv(compression: str, options: list[str]) -> None:
    argv = squashfs.mksquashfs_argv(
        Path("/b/rootfs"), Path("/b/image/root.squashfs"), compression, processors=2
    )
    assert argv == [
        "mksquashfs",
        "/b/rootfs",
        "/b/image/root.squashfs",
        "-noappend",
        "-no-progress",
        "-b",
        "1M",
        *options,
        "-processors",
        "2",
        *EXCLUDES,
    ]


def test_mksquashfs_argv_defaults_to_all_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 12)
    argv = squashfs.mksquashfs_argv(Path("/r"), Path("/d"), "zstd")
    assert argv[argv.index("-processors") + 1] == "12"
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    argv = squashfs.mksquashfs_argv(Path("/r"), Path("/d"), "zstd")
    assert argv[argv.index("-processors") + 1] == "1"


# -- bootfiles ------------------------------------------------------------------------------

MODULES = "usr/lib/modules/6.1.0-18-amd64/kernel"
COMPLETE = [
    "kernel",
    "kernel/x86/microcode/GenuineIntel.bin",
    "bin",
    "conf/initramfs.conf",
    "scripts/live",
    "scripts/live-bottom",
    "usr/bin/ipconfig",
    "usr/bin/busybox",
    "usr/lib/live/boot/9990-main.sh",
    f"{MODULES}/fs/squashfs/squashfs.ko.xz",
    f"{MODULES}/fs/overlayfs/overlay.ko.xz",
    f"{MODULES}/drivers/net/ethernet/intel/e1000/e1000.ko.xz",
]
MODULAR = {"CONFIG_SQUASHFS": "m", "CONFIG_OVERLAY_FS": "m"}


def test_initramfs_complete() -> None:
    assert bootfiles.initramfs_problems(COMPLETE, MODULAR) == []
    assert bootfiles.initramfs_problems(COMPLETE, {}) == []


def test_initramfs_without_ipconfig() -> None:
    listing = [f for f in COMPLETE if not f.endswith("ipconfig")]
    assert bootfiles.initramfs_problems(listing, MODULAR) == ["DHCP client (ipconfig)"]


def test_initramfs_without_squashfs_module_when_modular() -> None:
    listing = [f for f in COMPLETE if "squashfs.ko" not in f]
    assert bootfiles.initramfs_problems(listing, MODULAR) == ["squashfs module"]
    assert bootfiles.initramfs_problems(listing, {}) == ["squashfs module"]


def test_initramfs_built_in_squashfs_needs_no_module() -> None:
    listing = [f for f in COMPLETE if "squashfs.ko" not in f]
    config = {"CONFIG_SQUASHFS": "y", "CONFIG_OVERLAY_FS": "m"}
    assert bootfiles.initramfs_problems(listing, config) == []


def test_initramfs_lacking_everything() -> None:
    assert bootfiles.initramfs_problems(["init", "conf/conf.d"], MODULAR) == [
        "live-boot scripts",
        "DHCP client (ipconfig)",
        "downloader (busybox)",
        "squashfs module",
        "overlay module",
    ]


@pytest.mark.parametrize("suffix", ["", ".xz", ".zst", ".gz"])
def test_initramfs_module_compression_suffixes(suffix: str) -> None:
    listing = [f for f in COMPLETE if ".ko" not in f]
    listing += [f"{MODULES}/fs/squashfs/squashfs.ko{suffix}", f"{MODULES}/fs/o/overlay.ko{suffix}"]
    assert bootfiles.initramfs_problems(listing, MODULAR) == []


def test_initramfs_similar_names_do_not_count() -> None:
    listing = [
        "scripts/live.old",
        "usr/bin/ipconfig2",
        "usr/bin/busybox-static",
        f"{MODULES}/fs/squashfs/squashfs.ko.xz.sig",
        f"{MODULES}/fs/xoverlay.ko",
    ]
    assert bootfiles.initramfs_problems(listing, MODULAR) == [
        "live-boot scripts",
        "DHCP client (ipconfig)",
        "downloader (busybox)",
        "squashfs module",
        "overlay module",
    ]


def boot_dir(tmp_path: Path, *names: str) -> Path:
    boot = tmp_path / "boot"
    boot.mkdir(parents=True, exist_ok=True)
    for name in names:
        (boot / name).write_text(name)
    return tmp_path


def test_find_kernel_none(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="no kernel in /boot") as exc:
        bootfiles.find_kernel(boot_dir(tmp_path, "config-6.1.0-18-amd64"))
    assert exc.value.stage == "bootfiles"
    with pytest.raises(BuildError, match="no kernel"):
        bootfiles.find_kernel(tmp_path / "no-rootfs")


def test_find_kernel_one(tmp_path: Path) -> None:
    root = boot_dir(tmp_path, "vmlinuz-6.1.0-18-amd64", "initrd.img-6.1.0-18-amd64")
    assert bootfiles.find_kernel(root) == "6.1.0-18-amd64"


def test_find_kernel_two(tmp_path: Path) -> None:
    root = boot_dir(tmp_path, "vmlinuz-6.1.0-18-amd64", "vmlinuz-6.1.0-17-amd64")
    with pytest.raises(BuildError) as exc:
        bootfiles.find_kernel(root)
    assert exc.value.message == "more than one kernel installed: 6.1.0-17-amd64, 6.1.0-18-amd64"


def test_kernel_config(tmp_path: Path) -> None:
    root = boot_dir(tmp_path)
    (root / "boot/config-6.1.0-18-amd64").write_text(
        "#\n"
        "# Automatically generated file; DO NOT EDIT.\n"
        "#\n"
        "CONFIG_SQUASHFS=m\n"
        "CONFIG_OVERLAY_FS=y\n"
        "# CONFIG_SQUASHFS_XATTR is not set\n"
        'CONFIG_LOCALVERSION=""\n'
        'CONFIG_DEFAULT_HOSTNAME="(none)"\n'
        "NOT_CONFIG=1\n"
        "\n"
    )
    assert bootfiles.kernel_config(root, "6.1.0-18-amd64") == {
        "CONFIG_SQUASHFS": "m",
        "CONFIG_OVERLAY_FS": "y",
        "CONFIG_LOCALVERSION": '""',
        "CONFIG_DEFAULT_HOSTNAME": '"(none)"',
    }
    assert bootfiles.kernel_config(root, "6.9.9-other") == {}


def test_copy_boot_files(tmp_path: Path) -> None:
    root = boot_dir(tmp_path / "rootfs", "vmlinuz-6.1.0-18-amd64", "initrd.img-6.1.0-18-amd64")
    out = tmp_path / "out"
    out.mkdir()
    bootfiles.copy_boot_files(root, "6.1.0-18-amd64", out)
    assert (out / "vmlinuz").read_text() == "vmlinuz-6.1.0-18-amd64"
    assert (out / "initrd.img").read_text() == "initrd.img-6.1.0-18-amd64"
    assert (out / "vmlinuz").stat().st_mode & 0o777 == 0o644


def test_copy_boot_files_missing_initrd(tmp_path: Path) -> None:
    root = boot_dir(tmp_path / "rootfs", "vmlinuz-6.1.0-18-amd64")
    with pytest.raises(BuildError, match=r"/boot/initrd\.img-6\.1\.0-18-amd64 is missing"):
        bootfiles.copy_boot_files(root, "6.1.0-18-amd64", tmp_path)
