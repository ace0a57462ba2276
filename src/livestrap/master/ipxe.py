"""Pure: render the iPXE scripts that /boot/ipxe hands to a netbooting node (DESIGN §6).

iPXE expands `${...}` itself, so the node's own MAC reaches every URL without the master
knowing it in advance. The squashfs URL carries that MAC in its path, not a query string:
live-boot names the downloaded file after the URL's basename, which must stay
`root.squashfs`. Every value put into a line is checked against an allow-list here, not
only where it came from: white space or a newline would split the line, and `$`, `||`,
`&&`, `;`, `#` or quotes would let a value (an imported image's kernel options, a Host
header) run iPXE commands of its own; a broken script also leaves a node stuck.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from livestrap import bootpaths
from livestrap.kernelopts import check_kernel_options

CONSOLES = ("console=tty0", "console=ttyS0,115200n8")
NO_IMAGE_REASON = "no active image on the master"

# no $ ; # & | quotes, braces, backslash, white space: nothing iPXE would act on
_URL_RE = re.compile(r"https?://[A-Za-z0-9._~:/=@!+,%\[\]-]+")
_WORD_RE = re.compile(r"[A-Za-z0-9._~:/=@!+,%-]+")


def check_base_url(base_url: str) -> str:
    """The base URL without its trailing slash; ValueError if iPXE could not use it."""
    if not _URL_RE.fullmatch(base_url):
        raise ValueError(f"base URL {base_url!r} is not an http(s) URL usable in iPXE")
    return base_url.rstrip("/")


def _check_word(what: str, value: str) -> str:
    if not _WORD_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be one word of letters, digits and ._~:/=@!+,%-")
    return value


def _retry_lines(base: str, reason: str, retry_s: int) -> list[str]:
    """Tell the operator on the console, wait, then ask the master again (no nesting)."""
    if retry_s < 1:
        raise ValueError(f"retry interval must be at least 1 s, not {retry_s}")
    return [
        f"echo livestrap: {reason}; retrying in {retry_s} s",
        f"sleep {retry_s}",
        f"chain --replace --autofree {bootpaths.script_url(base)}",
    ]


def kernel_arguments(
    base_url: str,
    image_id: str,
    token: str,
    kernel_cmdline: Iterable[str] = (),
    *,
    mac: str = bootpaths.IPXE_MAC_HYPHENS,
    boot_path: str = "ipxe",
) -> list[str]:
    """The kernel command line: live-boot fetch=, the agent's parameters, consoles, extras.
    `mac` is how the boot loader writes the node's MAC with hyphens (iPXE's variable, or
    GRUB's: netboot.grub); `boot_path` tells the agent which loader booted it."""
    base = check_base_url(base_url)
    _check_word("image id", image_id)
    _check_word("token", token)
    extras = check_kernel_options([o for o in kernel_cmdline if o])
    return [
        "initrd=initrd.img",
        "boot=live",
        "fetch=" + bootpaths.mac_file_url(base, image_id, bootpaths.SQUASHFS, mac),
        f"livestrap.url={base}",
        f"livestrap.token={token}",
        f"livestrap.image={image_id}",
        f"BOOTIF=01-{mac}",
        f"livestrap.boot={_check_word('boot path', boot_path)}",
        *CONSOLES,
        *extras,
    ]


def render_boot_script(
    base_url: str,
    image_id: str,
    token: str,
    kernel_cmdline: Iterable[str] = (),
    *,
    retry_s: int = 30,
) -> str:
    """Boot `image_id`; if a download or the boot itself fails, retry from /boot/ipxe."""
    base = check_base_url(base_url)
    args = " ".join(kernel_arguments(base, image_id, token, kernel_cmdline))
    kernel = bootpaths.file_url(base, image_id, bootpaths.KERNEL)
    initrd = bootpaths.file_url(base, image_id, bootpaths.INITRD)
    lines = [
        "#!ipxe",
        f"kernel {kernel} {args} || goto failed",
        f"initrd --name initrd.img {initrd} || goto failed",
        "boot || goto failed",
        ":failed",
        *_retry_lines(base, f"booting image {image_id} failed", retry_s),
    ]
    return "\n".join(lines) + "\n"


def render_no_image_script(retry_s: int, base_url: str, reason: str = NO_IMAGE_REASON) -> str:
    """Nothing to boot yet: say so on the console and ask again in `retry_s` seconds."""
    base = check_base_url(base_url)
    if "\n" in reason or "\r" in reason or not reason.isprintable():
        raise ValueError("reason must be one printable line")
    return "\n".join(["#!ipxe", *_retry_lines(base, reason, retry_s)]) + "\n"


def render_low_memory_script(
    base_url: str, image_id: str, need_mib: int, has_mib: int, retry_s: int = 30
) -> str:
    """A node whose last report shows less RAM than the active image needs: say so on the
    console and do not boot it (it would run out of memory part way); ask again in
    `retry_s` seconds, when another image may be active."""
    _check_word("image id", image_id)
    reason = f"image {image_id} needs {int(need_mib)} MiB of RAM, this node has {int(has_mib)} MiB"
    return render_no_image_script(retry_s, base_url, f"{reason}: not booting it")
