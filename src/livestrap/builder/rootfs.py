"""Stage rootfs: one mmdebstrap run makes the whole root filesystem.

The argv is built by a pure function. mmdebstrap runs inside a private mount namespace,
so the /proc, /sys and /dev it mounts die with it however the build ends. Downloaded
packages are hard-linked in from and out to a cache shared by all builds.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from livestrap.builder import initramfs, slim
from livestrap.errors import BuildError

MERGED_USR_HOOKS = Path("/usr/share/mmdebstrap/hooks/merged-usr")

# Never unpacked into the image: documentation, manuals and translations.
DPKG_EXCLUDES = (
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
    "path-exclude=/usr/share/lintian/*",
)

# dpkg: no fsync per unpacked file (the tree is squashed afterwards, never booted from
# disk), and nothing unpacked that the image would only delete again.
DPKG_OPTIONS = ("force-unsafe-io", *DPKG_EXCLUDES, *slim.dpkg_excludes())

APT_OPTIONS = (
    'Acquire::Languages "none"',
    'Acquire::GzipIndexes "false"',  # plain lists for the SBOM (aptlists), whatever the host says
    'APT::Install-Recommends "false"',
    'APT::Install-Suggests "false"',
)


def private_ns(argv: list[str]) -> list[str]:
    """Wrap argv so every mount it makes lives in its own namespace and dies with it."""
    return ["unshare", "--mount", "--propagation", "private", "--", *argv]


def sh_hook(*commands: str) -> str:
    return " && ".join(commands)


def copy_debs(src: str, dest: str) -> str:
    """Shell: hard-link each .deb of src into dest (copy across filesystems).

    A file already in dest is left alone (a loop, not `cp -n`, whose exit status
    differs between coreutils releases).
    """
    return (
        f'for f in {src}/*.deb; do [ -e "$f" ] || continue; '
        f'[ -e {dest}/"${{f##*/}}" ] || cp -al "$f" {dest}/ 2>/dev/null || cp -a "$f" {dest}/; '
        "done"
    )


def mmdebstrap_argv(
    *,
    suite: str,
    rootfs: Path,
    sources_file: Path,
    packages: list[str],
    cache_dir: Path,
    config_dir: Path,
    missing_file: Path,
    python: str = sys.executable,
) -> list[str]:
    """The full mmdebstrap command line for a resolved spec (pure)."""
    q = shlex.quote
    cache = q(str(cache_dir))
    archives = '"$1/var/cache/apt/archives"'
    hooks = [
        "--setup-hook="
        + sh_hook(
            f"mkdir -p {archives} {cache}",
            copy_debs(cache, archives),
        ),
        "--setup-hook=" + sh_hook(f'cp -a {q(str(config_dir))}/. "$1/"'),
        "--extract-hook="
        + shlex.join([python, "-m", "livestrap.builder.pkgcheck", str(missing_file), *packages]),
        "--essential-hook=" + initramfs.divert_hook(),
        "--customize-hook=" + initramfs.make_once_hook(),
        "--customize-hook="
        + sh_hook(
            f"mkdir -p {cache}",
            copy_debs(archives, cache),
        ),
    ]
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--format=directory",
        "--variant=minbase",
        "--arch=amd64",
        "--verbose",
        "--skip=essential/unlink",
        "--skip=check/signed-by",
        # apt's lists stay: the SBOM reads them and an incremental rebuild runs apt on the
        # kept tree; customize.clean_image empties them in the image
        "--skip=cleanup/apt/lists",
        f"--include={','.join(packages)}",
    ]
    if MERGED_USR_HOOKS.is_dir():
        argv.append(f"--hook-dir={MERGED_USR_HOOKS}")
    argv += [f"--aptopt={opt}" for opt in APT_OPTIONS]
    argv += [f"--dpkgopt={opt}" for opt in DPKG_OPTIONS]
    argv += hooks
    argv += [suite, str(rootfs), str(sources_file)]
    return argv


def read_missing(missing_file: Path) -> list[str]:
    if not missing_file.is_file():
        return []
    return [line for line in missing_file.read_text().split() if line]


def missing_packages_error(missing: list[str]) -> BuildError:
    return BuildError(
        "rootfs",
        f"{len(missing)} package(s) not found in the configured repositories: "
        + ", ".join(missing),
    )
