"""The live-boot initramfs: made once, after every package is in, and kept small.

During package installation `update-initramfs` is diverted to a no-op (the kernel's
postinst hook and the initramfs-tools trigger would otherwise build it twice); the
rootfs stage then makes it once. A hook drops module trees that a network boot into a
squashfs never loads; what `fetch=` needs is checked afterwards (see bootfiles).
"""

from __future__ import annotations

import shlex

from livestrap.builder.slim import INITRAMFS_DROPPED_TREES

INITRAMFS_CONF = (
    "# livestrap: a netboot initramfs: network drivers, no local storage drivers\n"
    "MODULES=netboot\n"
    "COMPRESS=zstd\n"
)

UPDATE_INITRAMFS = "/usr/sbin/update-initramfs"
LIVE_HOOK = "/usr/share/initramfs-tools/hooks/live"
# the '~' makes mkinitramfs skip the moved original when it runs the hooks directory
LIVE_HOOK_ORIG = LIVE_HOOK + "~livestrap"
STUB = "#!/bin/sh\necho 'livestrap: update-initramfs deferred until all packages are in'\n"


def render_slim_hook(trees: tuple[str, ...] = INITRAMFS_DROPPED_TREES) -> str:
    """An initramfs-tools hook (runs after the packaged ones, before depmod)."""
    lines = [
        "#!/bin/sh",
        "# livestrap: drop module trees a network boot into a squashfs never needs",
        'PREREQ=""',
        'prereqs() { echo "$PREREQ"; }',
        'case "$1" in prereqs) prereqs; exit 0;; esac',
        'for base in "$DESTDIR"/usr/lib/modules/* "$DESTDIR"/lib/modules/*; do',
        '\t[ -d "$base" ] || continue',
        "\tfor tree in \\",
        *[f"\t\t{tree} \\" for tree in trees],
        "\t\t; do",
        '\t\trm -rf "${base:?}/$tree"',
        "\tdone",
        "done",
    ]
    return "\n".join(lines) + "\n"


def render_live_hook_wrapper(original: str = LIVE_HOOK_ORIG) -> str:
    """live-boot's hook does not answer `prereqs`, so mkinitramfs ran its whole work
    (about a third of the initramfs time) once more just to ask for its prerequisites."""
    return (
        "#!/bin/sh\n"
        "# livestrap: answer prereqs here; live-boot's own hook does its whole work instead\n"
        'case "$1" in prereqs) echo; exit 0;; esac\n'
        f'exec {original} "$@"\n'
    )


def wrap_live_hook() -> str:
    """Shell (mmdebstrap hook): divert live-boot's hook aside and put the wrapper there."""
    return (
        f'if [ -f "$1{LIVE_HOOK}" ]; then '
        f'chroot "$1" dpkg-divert --quiet --local --rename --divert {LIVE_HOOK_ORIG} '
        f"--add {LIVE_HOOK} && "
        f'printf %s {shlex.quote(render_live_hook_wrapper())} > "$1{LIVE_HOOK}" && '
        f'chmod 0755 "$1{LIVE_HOOK}"; fi'
    )


def divert_hook() -> str:
    """mmdebstrap essential hook: park update-initramfs while packages are installed."""
    return " && ".join(
        [
            f'chroot "$1" dpkg-divert --quiet --local --rename --add {UPDATE_INITRAMFS}',
            f'printf %s {shlex.quote(STUB)} > "$1{UPDATE_INITRAMFS}"',
            f'chmod 0755 "$1{UPDATE_INITRAMFS}"',
        ]
    )


def make_once_hook() -> str:
    """mmdebstrap customize hook: restore update-initramfs and build each initramfs once."""
    return " && ".join(
        [
            f'rm -f "$1{UPDATE_INITRAMFS}"',
            f'chroot "$1" dpkg-divert --quiet --local --rename --remove {UPDATE_INITRAMFS}',
            wrap_live_hook(),
            'for k in "$1"/usr/lib/modules/*; do'
            ' [ -d "$k" ] || continue;'
            ' chroot "$1" update-initramfs -c -k "$(basename "$k")" || exit 1;'
            " done",
        ]
    )
