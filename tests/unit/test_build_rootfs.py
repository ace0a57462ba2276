"""build.rootfs: the mmdebstrap command line, its shell hooks, and missing-package reports."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from livestrap.builder import initramfs, rootfs, slim
from livestrap.errors import BuildError

pytestmark = pytest.mark.unit

PACKAGES = ["live-boot", "linux-image-amd64", "curl=8.0-1"]
CACHE_HOOK_IN = (
    "--setup-hook="
    "mkdir -p \"$1/var/cache/apt/archives\" '/c/apt archives' && "
    "for f in '/c/apt archives'/*.deb; do [ -e \"$f\" ] || continue; "
    '[ -e "$1/var/cache/apt/archives"/"${f##*/}" ] || '
    'cp -al "$f" "$1/var/cache/apt/archives"/ 2>/dev/null || '
    'cp -a "$f" "$1/var/cache/apt/archives"/; done'
)
CACHE_HOOK_OUT = (
    "--customize-hook="
    "mkdir -p '/c/apt archives' && "
    'for f in "$1/var/cache/apt/archives"/*.deb; do [ -e "$f" ] || continue; '
    "[ -e '/c/apt archives'/\"${f##*/}\" ] || "
    "cp -al \"$f\" '/c/apt archives'/ 2>/dev/null || "
    "cp -a \"$f\" '/c/apt archives'/; done"
)
DIVERT_HOOK = (
    "--essential-hook="
    'chroot "$1" dpkg-divert --quiet --local --rename --add /usr/sbin/update-initramfs && '
    "printf %s '#!/bin/sh\necho '\"'\"'livestrap: update-initramfs deferred until all "
    "packages are in'\"'\"'\n' > \"$1/usr/sbin/update-initramfs\" && "
    'chmod 0755 "$1/usr/sbin/update-initramfs"'
)
MAKE_ONCE_HOOK = (
    "--customize-hook="
    'rm -f "$1/usr/sbin/update-initramfs" && '
    'chroot "$1" dpkg-divert --quiet --local --rename --remove /usr/sbin/update-initramfs && '
    + initramfs.wrap_live_hook()
    + " && "
    'for k in "$1"/usr/lib/modules/*; do [ -d "$k" ] || continue; '
    'chroot "$1" update-initramfs -c -k "$(basename "$k")" || exit 1; done'
)


def argv(cache_dir: Path = Path("/c/apt archives")) -> list[str]:
    return rootfs.mmdebstrap_argv(
        suite="bookworm",
        rootfs=Path("/b/rootfs"),
        sources_file=Path("/b/livestrap.sources"),
        packages=PACKAGES,
        cache_dir=cache_dir,
        config_dir=Path("/b/config"),
        missing_file=Path("/b/missing-packages"),
        python="/usr/bin/python3",
    )


@pytest.fixture
def no_merged_usr_hooks(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(rootfs, "MERGED_USR_HOOKS", tmp_path / "no-such-hooks")


def test_mmdebstrap_argv_exact(no_merged_usr_hooks: None) -> None:
    assert argv() == [
        "mmdebstrap",
        "--mode=root",
        "--format=directory",
        "--variant=minbase",
        "--arch=amd64",
        "--verbose",
        "--skip=essential/unlink",
        "--skip=check/signed-by",
        "--skip=cleanup/apt/lists",
        "--include=live-boot,linux-image-amd64,curl=8.0-1",
        '--aptopt=Acquire::Languages "none"',
        '--aptopt=APT::Install-Recommends "false"',
        '--aptopt=APT::Install-Suggests "false"',
        "--dpkgopt=force-unsafe-io",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/info/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--dpkgopt=path-exclude=/usr/share/lintian/*",
        *[f"--dpkgopt={opt}" for opt in slim.dpkg_excludes()],
        CACHE_HOOK_IN,
        '--setup-hook=cp -a /b/config/. "$1/"',
        "--extract-hook=/usr/bin/python3 -m livestrap.builder.pkgcheck /b/missing-packages "
        "live-boot linux-image-amd64 curl=8.0-1",
        DIVERT_HOOK,
        MAKE_ONCE_HOOK,
        CACHE_HOOK_OUT,
        "bookworm",
        "/b/rootfs",
        "/b/livestrap.sources",
    ]


def test_mmdebstrap_argv_uses_merged_usr_hooks_when_present(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hooks = tmp_path / "merged-usr"
    hooks.mkdir()
    monkeypatch.setattr(rootfs, "MERGED_USR_HOOKS", hooks)
    args = argv()
    i = args.index("--include=live-boot,linux-image-amd64,curl=8.0-1")
    assert args[i + 1] == f"--hook-dir={hooks}"
    assert args[i + 2].startswith("--aptopt=")


def test_extract_hook_quotes_paths(no_merged_usr_hooks: None) -> None:
    args = rootfs.mmdebstrap_argv(
        suite="bookworm",
        rootfs=Path("/b/rootfs"),
        sources_file=Path("/b/livestrap.sources"),
        packages=["curl"],
        cache_dir=Path("/c"),
        config_dir=Path("/b/my config"),
        missing_file=Path("/b/my dir/missing"),
        python="/opt/py env/bin/python3",
    )
    extract = hooks(args)[2]
    assert extract == (
        "--extract-hook='/opt/py env/bin/python3' -m livestrap.builder.pkgcheck "
        "'/b/my dir/missing' curl"
    )
    assert hooks(args)[1] == "--setup-hook=cp -a '/b/my config'/. \"$1/\""


def test_hooks_are_valid_sh(no_merged_usr_hooks: None) -> None:
    for arg in hooks(argv()):
        script = arg.split("=", 1)[1]
        proc = subprocess.run(["sh", "-n", "-c", script], capture_output=True, text=True)
        assert proc.returncode == 0, (arg, proc.stderr)


def hooks(args: list[str]) -> list[str]:
    return [a for a in args if a.split("=", 1)[0].endswith("-hook")]


def run_hook(hook: str, root: Path) -> None:
    script = hook.split("=", 1)[1]
    subprocess.run(["sh", "-c", script, "hook", str(root)], check=True, timeout=10)


def test_cache_hooks_link_debs_in_and_out(tmp_path: Path) -> None:
    cache = tmp_path / "apt archives"
    cache.mkdir()
    (cache / "a_1_amd64.deb").write_text("a1")
    (cache / "notes.txt").write_text("not a package")
    root = tmp_path / "root"
    root.mkdir()
    all_hooks = hooks(argv(cache_dir=cache))
    assert len(all_hooks) == 6
    hook_in, hook_out = all_hooks[0], all_hooks[-1]
    assert hook_in.startswith("--setup-hook=mkdir")
    assert hook_out.startswith("--customize-hook=mkdir")

    run_hook(hook_in, root)
    archives = root / "var/cache/apt/archives"
    assert sorted(p.name for p in archives.iterdir()) == ["a_1_amd64.deb"]
    assert (archives / "a_1_amd64.deb").stat().st_ino == (cache / "a_1_amd64.deb").stat().st_ino

    (archives / "b_2_amd64.deb").write_text("b2")  # downloaded during the build
    (archives / "a_1_amd64.deb").unlink()
    (archives / "a_1_amd64.deb").write_text("changed")  # an existing cache file is kept
    run_hook(hook_out, root)
    assert sorted(p.name for p in cache.iterdir()) == [
        "a_1_amd64.deb",
        "b_2_amd64.deb",
        "notes.txt",
    ]
    assert (cache / "a_1_amd64.deb").read_text() == "a1"
    assert (cache / "b_2_amd64.deb").read_text() == "b2"


def test_cache_hook_in_with_empty_cache(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    run_hook(hooks(argv(cache_dir=tmp_path / "new cache"))[0], root)
    assert (tmp_path / "new cache").is_dir()
    assert list((root / "var/cache/apt/archives").iterdir()) == []


def test_private_ns() -> None:
    assert rootfs.private_ns(["mmdebstrap", "x"]) == [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "mmdebstrap",
        "x",
    ]


def test_read_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing-packages"
    assert rootfs.read_missing(path) == []
    path.write_text("")
    assert rootfs.read_missing(path) == []
    path.write_text("foo\nbar-baz\n\n")
    assert rootfs.read_missing(path) == ["foo", "bar-baz"]


def test_missing_packages_error_lists_every_name() -> None:
    err = rootfs.missing_packages_error(["nosuchpkg", "typo-pkg", "other"])
    assert isinstance(err, BuildError)
    assert err.stage == "rootfs"
    assert err.message == (
        "3 package(s) not found in the configured repositories: nosuchpkg, typo-pkg, other"
    )
    assert str(err) == f"stage rootfs: {err.message}"
