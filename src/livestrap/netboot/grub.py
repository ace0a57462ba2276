"""Pure: the GRUB config of the Secure Boot chain, shim -> Debian's network GRUB -> kernel.

Only binaries the distribution signed run: shim (signed by Microsoft's UEFI CA) loads
`grubx64.efi` from the same TFTP folder, which must be Debian's `grubnetx64.efi.signed`
(signed by Debian), and that GRUB's `linux` has shim check the image's kernel (signed by
Debian). Debian's network GRUB has its prefix baked in as `/grub` on the device it came from and
reads `$prefix/grub.cfg`, so the config is `grub/grub.cfg` in the TFTP tree. The config
asks for the kernel and the initrd over HTTP first (the master's /boot URLs: on the
timeline, with the MAC) and falls back to `image/<id>/` in the same tree over TFTP
(netboot.tftptree). Seen here: Debian 12's GRUB has no `http` module (and Secure Boot
forbids loading one), so it falls back at once; Debian 13's has one, fetches the kernel,
then refuses it ("big file signature isn't implemented yet") because it matches
`Content-Length` case by case and uvicorn sends `content-length`, so it falls back too,
one kernel download later. nginx in front spells it `Content-Length` (untested here).
live-boot's squashfs download and the agent use HTTP on every path.

The kernel command line is the iPXE path's (master.ipxe.kernel_arguments), with the
node's MAC spelled by GRUB: `$net_default_mac` has colons, and `regexp` splits it so
that BOOTIF= and the squashfs URL get the hyphens they have on the iPXE path. A static
file cannot tell nodes apart, so the RAM refusal of /boot/ipxe has no equivalent here.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from livestrap import bootpaths
from livestrap.master.ipxe import NO_IMAGE_REASON, check_base_url, kernel_arguments

CONFIG_PATH = "grub/grub.cfg"  # under the TFTP root: Debian's baked-in prefix is /grub
GRUB_MAC_HYPHENS = "${livestrap_mac}"  # set by MAC_LINES below
_OCTET = "([0-9a-fA-F][0-9a-fA-F])"
MAC_LINES = [
    "regexp --set=1:m1 --set=2:m2 --set=3:m3 --set=4:m4 --set=5:m5 --set=6:m6 "
    f"'^{':'.join([_OCTET] * 6)}$' \"$net_default_mac\"",
    'set livestrap_mac="${m1}-${m2}-${m3}-${m4}-${m5}-${m6}"',
]
HEADER = [
    "# livestrap: Secure Boot chain shim -> GRUB -> kernel (written by livestrap; it is",
    "# rewritten when the active image changes: edit the master's settings, not this file)",
    "set timeout=0",
]


IMAGES_FOLDER = "image"  # of the TFTP tree: image/<id>/vmlinuz


def grub_http_device(base_url: str) -> str | None:
    """GRUB's name for the master over HTTP, (http,HOST) or (http,HOST:PORT); None where
    GRUB cannot use it (https, an IPv6 literal): then TFTP only."""
    parts = urlsplit(base_url)
    if parts.scheme != "http" or not parts.hostname or ":" in parts.hostname:
        return None
    return f"(http,{parts.netloc})"


def image_dir(image_id: str) -> str:
    """Where the tree holds an image's kernel and initrd (relative to the TFTP root)."""
    return f"{IMAGES_FOLDER}/{image_id}"


def _retry_lines(reason: str, retry_s: int) -> list[str]:
    """Say why on the console, wait, then reboot: the firmware's network boot asks again."""
    if retry_s < 1:
        raise ValueError(f"retry interval must be at least 1 s, not {retry_s}")
    if not reason.isprintable() or '"' in reason or "$" in reason or "\\" in reason:
        raise ValueError("reason must be one printable line without quotes, $ or \\")
    return [f'echo "livestrap: {reason}; retrying in {retry_s} s"', f"sleep {retry_s}", "reboot"]


def render_grub_config(
    base_url: str,
    image_id: str,
    token: str,
    kernel_cmdline: Iterable[str] = (),
    *,
    retry_s: int = 30,
) -> str:
    """Boot `image_id` with the iPXE path's command line; on a failure, retry by rebooting.
    Every value is allow-listed by kernel_arguments: nothing in it is special to GRUB."""
    base = check_base_url(base_url)
    args = kernel_arguments(
        base, image_id, token, kernel_cmdline, mac=GRUB_MAC_HYPHENS, boot_path="grub"
    )
    folder, cmdline = image_dir(image_id), " ".join(args)
    device = grub_http_device(base)
    over_tftp = [
        f"linux /{folder}/{bootpaths.KERNEL} {cmdline}",
        f"initrd /{folder}/{bootpaths.INITRD}",
    ]
    if device is None:
        loading = over_tftp
    else:
        kernel, initrd = (
            device + urlsplit(bootpaths.mac_file_url(base, image_id, n, GRUB_MAC_HYPHENS)).path
            for n in (bootpaths.KERNEL, bootpaths.INITRD)
        )
        loading = [
            f"if linux {kernel} {cmdline}; then",
            f"  initrd {initrd}",
            "else",
            '  echo "livestrap: this GRUB has no HTTP: kernel and initrd over TFTP"',
            *(f"  {line}" for line in over_tftp),
            "fi",
        ]
    lines = [
        *HEADER,
        *MAC_LINES,
        f'echo "livestrap: booting image {image_id} (Secure Boot chain) for $livestrap_mac"',
        *loading,
        "boot",
        *_retry_lines(f"booting image {image_id} failed", retry_s),
    ]
    return "\n".join(lines) + "\n"


def render_grub_no_image(retry_s: int = 30, reason: str = NO_IMAGE_REASON) -> str:
    """Nothing to boot: say so, wait, reboot (the firmware then boots from the network again)."""
    return "\n".join([*HEADER, *_retry_lines(reason, retry_s)]) + "\n"
