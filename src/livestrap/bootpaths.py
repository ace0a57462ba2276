"""Pure: every /boot URL a netbooting node fetches, formatted and parsed in one place.

The iPXE script (master.ipxe), the routes that answer it (master.routes.boot, .loaders), nginx's
end-of-transfer notice (master.accel, netboot.nginx) and the configs that point firmware
at the master (netboot.dnsmasq, netboot.qemu) all name these URLs; a change made here
reaches them all. The paths, under PREFIX:

- `/ipxe?mac=M`: the iPXE script;
- `/images/<id>/<name>?mac=M`: the kernel and the initrd;
- `/m/<mac>/images/<id>/<name>`: the squashfs. live-boot's `fetch=` names the download
  after the URL's basename, which must stay `root.squashfs`, so the MAC goes in the path;
- `/efi/<name>`: an EFI boot loader from the master's host (Debian's `ipxe.efi`), what
  UEFI HTTP boot firmware is handed by DHCP; the MAC is not known there (no query);
- `/nginx/sent`: nginx's notice of a transfer (from nginx on the master's host, or a
  rack cache among the trusted proxies).

Values are put in as given: the iPXE variables below are expanded by iPXE on the node,
and each renderer checks its values against its own allow-list. Standard library only,
no I/O; the agent does not import this (it reads only what the kernel line says).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

PREFIX = "/boot"
SCRIPT_ROUTE = "/ipxe"  # routes are relative to PREFIX (FastAPI path templates)
FILE_ROUTE = "/images/{image_id}/{name}"
MAC_FILE_ROUTE = "/m/{node_mac}/images/{image_id}/{name}"
LOADER_ROUTE = "/efi/{name}"
SENT_ROUTE = "/nginx/sent"
SENT_PATH = PREFIX + SENT_ROUTE
RACK_HEADER = "x-livestrap-rack"  # a rack cache's own URL: boot scripts point back at it
FILL_HEADER = "x-livestrap-cache-fill"  # a rack cache's upstream fetch, not a node's

KERNEL = "vmlinuz"
INITRD = "initrd.img"
SQUASHFS = "root.squashfs"
BOOT_FILES = (KERNEL, INITRD, SQUASHFS)

IPXE_MAC = "${net0/mac}"  # iPXE expands it to aa:bb:cc:dd:ee:ff
IPXE_MAC_HYPHENS = "${net0/mac:hexhyp}"  # aa-bb-cc-dd-ee-ff, as BOOTIF= writes it


def _route_re(route: str) -> re.Pattern[str]:
    """A route template as a regex: each {param} one path segment (what FastAPI matches)."""
    return re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(PREFIX + route)))


_FILE_PATH_RES = (_route_re(FILE_ROUTE), _route_re(MAC_FILE_ROUTE))


def _base(base_url: str) -> str:
    return base_url.rstrip("/")


def script_url(base_url: str, mac: str = IPXE_MAC) -> str:
    """The iPXE script's URL; the MAC names the node on the boot timeline."""
    return f"{_base(base_url)}{PREFIX}{SCRIPT_ROUTE}?mac={mac}"


def file_url(base_url: str, image_id: str, name: str, mac: str = IPXE_MAC) -> str:
    """A boot file's URL with the MAC in the query (what iPXE fetches)."""
    path = FILE_ROUTE.format(image_id=image_id, name=name)
    return f"{_base(base_url)}{PREFIX}{path}?mac={mac}"


def mac_file_url(base_url: str, image_id: str, name: str, mac: str = IPXE_MAC_HYPHENS) -> str:
    """A boot file's URL with the MAC in the path and no query (live-boot's fetch=)."""
    path = MAC_FILE_ROUTE.format(node_mac=mac, image_id=image_id, name=name)
    return f"{_base(base_url)}{PREFIX}{path}"


def loader_url(base_url: str, name: str) -> str:
    """An EFI loader's URL (UEFI HTTP boot's boot file): no MAC, firmware adds none."""
    return f"{_base(base_url)}{PREFIX}{LOADER_ROUTE.format(name=name)}"


@dataclass(frozen=True)
class BootFileRequest:
    """Which boot file a URL asks for, and the node's MAC if it said (as it said it)."""

    image_id: str
    name: str
    mac: str | None


def parse_file_url(uri: str) -> BootFileRequest | None:
    """The inverse of file_url and mac_file_url for a path (and query) as a request line
    carries it: /boot/images/<id>/<name>?mac=M or /boot/m/<mac>/images/<id>/<name>.
    None for anything else; the values are percent-decoded, not checked."""
    parts = urlsplit(uri)
    for pattern in _FILE_PATH_RES:
        m = pattern.fullmatch(parts.path)
        if m is not None:
            break
    else:
        return None
    found = m.groupdict()
    mac = found.get("node_mac") or parse_qs(parts.query).get("mac", [""])[0] or None
    return BootFileRequest(
        unquote(found["image_id"]), unquote(found["name"]), unquote(mac) if mac else None
    )
