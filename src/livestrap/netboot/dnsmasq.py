"""dnsmasq for a real network: PXE firmware gets Debian's iPXE over TFTP, iPXE gets the
master's script over HTTP.

iPXE announces itself with the DHCP user class `iPXE`; without telling it apart, the
firmware's PXE and iPXE would be handed the same iPXE binary forever (DESIGN §4).
Pure renderer: `render_dnsmasq_config` returns the text; the CLI writes it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from livestrap import bootpaths

IPXE_DIR = "/usr/lib/ipxe"
BIOS_IPXE = "undionly.kpxe"
EFI_IPXE = "ipxe.efi"


@dataclass(frozen=True)
class DnsmasqOptions:
    master_url: str  # how nodes reach the master, e.g. http://192.0.2.10:8080
    interface: str | None = None
    dhcp_range: tuple[str, str] | None = None  # full DHCP: first and last address
    proxy_subnet: str | None = None  # proxy-DHCP beside an existing DHCP server
    lease: str = "1h"
    tftp_root: str = IPXE_DIR


def check_options(opts: DnsmasqOptions) -> list[str]:
    """Problems with the options (empty when they can be rendered)."""
    problems = []
    if (opts.dhcp_range is None) == (opts.proxy_subnet is None):
        problems.append("choose one of --dhcp-range FIRST,LAST or --proxy-dhcp SUBNET")
    for addr in opts.dhcp_range or ():
        try:
            ipaddress.IPv4Address(addr)
        except ValueError:
            problems.append(f"{addr!r} is not an IPv4 address")
    if opts.proxy_subnet:
        try:
            ipaddress.IPv4Network(opts.proxy_subnet, strict=False)
        except ValueError:
            problems.append(f"{opts.proxy_subnet!r} is not an IPv4 subnet")
    if not opts.master_url.startswith("http://"):
        problems.append(f"{opts.master_url!r}: iPXE needs an http:// URL for the master")
    return problems


def render_dnsmasq_config(opts: DnsmasqOptions) -> str:
    script = bootpaths.script_url(opts.master_url)
    lines = [
        "# livestrap: network boot PXE -> iPXE -> the master (generated; edit the options,",
        "# not this file: livestrap netboot dnsmasq-config)",
        "port=0",
        "log-dhcp",
    ]
    if opts.interface:
        lines += [f"interface={opts.interface}", "bind-interfaces"]
    lines += [
        "enable-tftp",
        f"tftp-root={opts.tftp_root}",
        "dhcp-userclass=set:ipxe,iPXE",
        "dhcp-vendorclass=set:pxe,PXEClient",
        "dhcp-match=set:efi64,option:client-arch,7",
        "dhcp-match=set:efi64,option:client-arch,9",
    ]
    if opts.dhcp_range:
        first, last = opts.dhcp_range
        lines += [
            f"dhcp-range={first},{last},{opts.lease}",
            f"dhcp-boot=tag:ipxe,{script}",
            f"dhcp-boot=tag:pxe,tag:!ipxe,tag:efi64,{EFI_IPXE}",
            f"dhcp-boot=tag:pxe,tag:!ipxe,tag:!efi64,{BIOS_IPXE}",
        ]
    else:
        net = ipaddress.IPv4Network(opts.proxy_subnet or "", strict=False)
        lines += [
            f"dhcp-range={net.network_address},proxy,{net.netmask}",
            'pxe-prompt="livestrap",0',
            # pxe-service adds ".0" to x86PC names: tftp-root must hold undionly.0
            'pxe-service=tag:!ipxe,x86PC,"livestrap: iPXE (BIOS)",undionly',
            f'pxe-service=tag:!ipxe,X86-64_EFI,"livestrap: iPXE (UEFI)",{EFI_IPXE}',
            f"dhcp-boot=tag:ipxe,{script}",
        ]
    return "\n".join(lines) + "\n"
