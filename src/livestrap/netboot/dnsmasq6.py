"""The DHCPv6 part of the dnsmasq configuration (netboot.dnsmasq renders the rest).

Stateful DHCPv6 from a range of one /64, with router advertisements (`enable-ra`: the
RA's managed flag sends clients to DHCPv6; dnsmasq needs an address in that /64 on the
interface). The boot file is option 59 (bootfile-url):

- iPXE (user class `iPXE`, the same tag as for v4) -> the script URL on the master's v6 URL;
- x64 UEFI HTTP boot (client arch, option 61, 16) -> the ipxe.efi URL, with the vendor
  class option 16 carrying `HTTPClient` (EDK2 takes an offer for HTTP boot only with it;
  the enterprise number in front is not checked, 343 is the one EDK2 itself sends).

Not rendered: UEFI PXE over IPv6 (client arch 7). Its bootfile-url must be a tftp:// URL
naming dnsmasq's own v6 address, which the renderer does not know; such firmware boots
over IPv4 or over HTTP. The master's v6 URL is `master_url_v6`, or the v4 one when its
host is a DNS name (which then needs a AAAA record the firmware can resolve).

Tested as text and with dnsmasq (it serves the RA and DHCPv6 leases). A whole boot over
IPv6 was not reached here: Debian 12's OVMF (2022.11) "UEFI HTTPv6" option fails with
"Unexpected network error" before it sends its own DHCPv6 Solicit (on the wire there is
only Ip6Config's, without client arch or vendor class, with or without an RA), and the
Linux side (live-boot's initramfs DHCP, klibc ipconfig) configures IPv4 only anyway.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from livestrap import bootpaths

EFI_IPXE = "ipxe.efi"
HTTP_ARCH_X64 = 16
PREFIX_LEN = 64
EDK2_ENTERPRISE = 343
# option 16: enterprise number (4 bytes), then one vendor-class-data: length (2), text
VENDOR_CLASS_HTTP = ":".join(
    f"{b:02x}"
    for b in (EDK2_ENTERPRISE.to_bytes(4, "big") + (10).to_bytes(2, "big") + b"HTTPClient")
)


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _is_ip(host: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(host).version == version
    except ValueError:
        return False


def check_options(
    dhcp_range_v6: tuple[str, str] | None, master_url_v6: str | None, master_url: str
) -> list[str]:
    """Problems with the v6 options (empty when they can be rendered)."""
    if dhcp_range_v6 is None:
        return ["--boot-url-v6 needs --dhcp-range-v6"] if master_url_v6 else []
    problems = []
    addrs = []
    for addr in dhcp_range_v6:
        try:
            addrs.append(ipaddress.IPv6Address(addr))
        except ValueError:
            problems.append(f"{addr!r} is not an IPv6 address")
    if len(addrs) == 2:
        first, last = addrs
        net = ipaddress.IPv6Network(f"{first}/{PREFIX_LEN}", strict=False)
        if last not in net or last < first:
            problems.append(f"--dhcp-range-v6 {first},{last}: not a range of one /{PREFIX_LEN}")
    if master_url_v6 is None:
        if _is_ip(_host(master_url), 4) or not _host(master_url):
            problems.append("--dhcp-range-v6 needs --boot-url-v6 (--boot-url is an IPv4 address)")
    else:
        host = _host(master_url_v6)
        if not master_url_v6.startswith("http://") or not host:
            problems.append(f"{master_url_v6!r}: expected http://[ADDRESS]:PORT or http://NAME")
        elif _is_ip(host, 4):
            problems.append(f"{master_url_v6!r}: an IPv4 address in the IPv6 URL")
        if any(c in master_url_v6 for c in " ,\"'#\n"):
            problems.append(f"{master_url_v6!r}: no spaces, commas, quotes or # in the URL")
    return problems


def render(
    dhcp_range_v6: tuple[str, str], master_url_v6: str, lease: str, http_boot: bool
) -> list[str]:
    """The v6 lines (after the v4 ones: the `ipxe` tag is set there)."""
    first, last = dhcp_range_v6
    lines = [
        f"dhcp-range={first},{last},{PREFIX_LEN},{lease}",
        "enable-ra",
        f"dhcp-option=tag:ipxe,option6:bootfile-url,{bootpaths.script_url(master_url_v6)}",
    ]
    if http_boot:
        loader = bootpaths.loader_url(master_url_v6, EFI_IPXE)
        lines += [
            f"dhcp-match=set:efi64http6,option6:61,{HTTP_ARCH_X64}",
            f"dhcp-option-force=tag:efi64http6,tag:!ipxe,option6:16,{VENDOR_CLASS_HTTP}",
            f"dhcp-option=tag:efi64http6,tag:!ipxe,option6:bootfile-url,{loader}",
        ]
    return lines
