"""dnsmasq for a real network: firmware gets Debian's iPXE (PXE over TFTP, or UEFI HTTP
boot over HTTP from the master), iPXE gets the master's script over HTTP.

iPXE announces itself with the DHCP user class `iPXE`; without telling it apart, the
firmware and iPXE would be handed the same iPXE binary forever (DESIGN §4).

- PXE (`tftp`): vendor class `PXEClient`; BIOS gets `undionly.kpxe`, x64 UEFI (client
  arch 7, 9) `ipxe.efi`, both from dnsmasq's own TFTP server.
- UEFI HTTP boot (`http_boot`): vendor class `HTTPClient` and client arch 16 (x64 UEFI
  HTTP); the answer must carry option 60 `HTTPClient` back (or EDK2 firmware ignores it)
  and the boot file is the URL of `ipxe.efi` on the master (/boot/efi/ipxe.efi). No TFTP.
  Proxy-DHCP: dnsmasq's proxy mode answers only the vendor classes of `dhcp-pxe-vendor`,
  so HTTPClient is added there; its proxy offer then carries option 60 HTTPClient, and
  `dhcp-boot` puts the URL in the file field (a `pxe-service` for arch 16 sent no boot
  file at all: dnsmasq 2.90). EDK2 pairs that offer with the DHCP server's address offer.
- DHCPv6 (full DHCP only: dnsmasq has no proxy mode for v6; netboot.dnsmasq6).

- Secure Boot (`secure_boot`): x64 UEFI PXE gets `shimx64.efi` from the TFTP tree the
  master keeps (netboot.tftptree; shim -> Debian's GRUB -> the kernel). UEFI HTTP boot
  still hands out iPXE: Debian 12's signed GRUB has no HTTP, so shim loaded over HTTP
  could not go on; a machine with Secure Boot on must PXE-boot.

What does not work: other architectures (arm64, 32-bit UEFI) get no boot file; HTTPS
boot URLs (the master's /boot is plain HTTP, and firmware would need its CA); PXE clients
when `tftp` is off (they get an address and nothing to boot).
Pure renderer: `render_dnsmasq_config` returns the text; the CLI writes it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from livestrap import bootpaths
from livestrap.netboot import dnsmasq6

IPXE_DIR = "/usr/lib/ipxe"
BIOS_IPXE = "undionly.kpxe"
EFI_IPXE = "ipxe.efi"
SHIM = "shimx64.efi"  # netboot.tftptree.SHIM: the Secure Boot chain's first file
HTTP_CLIENT = "HTTPClient"  # UEFI spec: the vendor class of HTTP boot, echoed in option 60
HTTP_ARCH_X64 = 16  # client-arch (RFC 4578 / IANA): x64 UEFI HTTP boot


@dataclass(frozen=True)
class DnsmasqOptions:
    master_url: str  # how nodes reach the master, e.g. http://192.0.2.10:8080
    interface: str | None = None
    dhcp_range: tuple[str, str] | None = None  # full DHCP: first and last address
    proxy_subnet: str | None = None  # proxy-DHCP beside an existing DHCP server
    lease: str = "1h"
    tftp_root: str = IPXE_DIR
    tftp: bool = True  # PXE: dnsmasq serves iPXE over TFTP
    http_boot: bool = True  # UEFI HTTP boot: ipxe.efi from the master over HTTP
    dhcp_range_v6: tuple[str, str] | None = None  # DHCPv6 (and router advertisements)
    master_url_v6: str | None = None  # the master over IPv6, e.g. http://[2001:db8::10]:8080
    # PXE on x64 UEFI gets Debian's signed shim instead of iPXE (tftp_root: the TFTP tree
    # of netboot.tftptree, which holds shim, GRUB and iPXE alike)
    secure_boot: bool = False


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
    if opts.secure_boot and not opts.tftp:
        problems.append("--secure-boot needs TFTP: Debian's signed GRUB reads its config there")
    if opts.secure_boot and opts.tftp_root == IPXE_DIR:
        problems.append("--secure-boot: give --tftp-root the master's TFTP tree (serve "
                        "--tftp-dir, or netboot tftp-tree): it holds shim and GRUB")  # fmt: skip
    if not (opts.tftp or opts.http_boot):
        problems.append("with --no-tftp and --no-http-boot no firmware could load iPXE")
    if any(c in opts.master_url for c in " ,\"'#\n"):  # dnsmasq's separators and quotes
        problems.append(f"{opts.master_url!r}: no spaces, commas, quotes or # in the URL")
    problems += dnsmasq6.check_options(opts.dhcp_range_v6, opts.master_url_v6, opts.master_url)
    return problems


def render_dnsmasq_config(opts: DnsmasqOptions) -> str:
    script = bootpaths.script_url(opts.master_url)
    loader = bootpaths.loader_url(opts.master_url, EFI_IPXE)
    lines = [
        "# livestrap: network boot PXE or UEFI HTTP -> iPXE -> the master (generated; edit",
        "# the options, not this file: livestrap netboot dnsmasq-config)",
        "port=0",
        "log-dhcp",
    ]
    if opts.interface:
        lines += [f"interface={opts.interface}", "bind-interfaces"]
    if opts.tftp:
        lines += ["enable-tftp", f"tftp-root={opts.tftp_root}"]
    lines.append("dhcp-userclass=set:ipxe,iPXE")
    if opts.tftp:
        lines += [
            "dhcp-vendorclass=set:pxe,PXEClient",
            "dhcp-match=set:efi64,option:client-arch,7",
            "dhcp-match=set:efi64,option:client-arch,9",
        ]
    if opts.http_boot:
        lines += [
            f"dhcp-vendorclass=set:http,{HTTP_CLIENT}",
            f"dhcp-match=set:efi64http,option:client-arch,{HTTP_ARCH_X64}",
        ]
    if opts.dhcp_range:
        lines += _full_dhcp(opts, script, loader)
    else:
        lines += _proxy_dhcp(opts, script, loader)
    if opts.dhcp_range_v6:
        lines += dnsmasq6.render(opts.dhcp_range_v6, _url_v6(opts), opts.lease, opts.http_boot)
    return "\n".join(lines) + "\n"


def _url_v6(opts: DnsmasqOptions) -> str:
    return opts.master_url_v6 or opts.master_url


def _efi_pxe_file(opts: DnsmasqOptions) -> str:
    """What x64 UEFI PXE firmware gets: shim (Secure Boot chain, which also boots with
    Secure Boot off) or iPXE."""
    return SHIM if opts.secure_boot else EFI_IPXE


def _efi_pxe_name(opts: DnsmasqOptions) -> str:
    return "shim -> GRUB (UEFI, Secure Boot)" if opts.secure_boot else "iPXE (UEFI)"


def _full_dhcp(opts: DnsmasqOptions, script: str, loader: str) -> list[str]:
    first, last = opts.dhcp_range or ("", "")
    lines = [f"dhcp-range={first},{last},{opts.lease}", f"dhcp-boot=tag:ipxe,{script}"]
    if opts.tftp:
        lines += [
            f"dhcp-boot=tag:pxe,tag:!ipxe,tag:efi64,{_efi_pxe_file(opts)}",
            f"dhcp-boot=tag:pxe,tag:!ipxe,tag:!efi64,{BIOS_IPXE}",
        ]
    if opts.http_boot:
        lines += [
            f"dhcp-option-force=tag:http,tag:efi64http,tag:!ipxe,option:vendor-class,{HTTP_CLIENT}",
            f"dhcp-boot=tag:http,tag:efi64http,tag:!ipxe,{loader}",
        ]
    return lines


def _proxy_dhcp(opts: DnsmasqOptions, script: str, loader: str) -> list[str]:
    net = ipaddress.IPv4Network(opts.proxy_subnet or "", strict=False)
    lines = [f"dhcp-range={net.network_address},proxy,{net.netmask}"]
    if opts.http_boot:
        lines.append(f"dhcp-pxe-vendor=PXEClient,{HTTP_CLIENT}")
    lines.append('pxe-prompt="livestrap",0')
    if opts.tftp:
        lines += [
            # pxe-service adds ".0" to x86PC names: tftp-root must hold undionly.0
            'pxe-service=tag:!ipxe,x86PC,"livestrap: iPXE (BIOS)",undionly',
            f'pxe-service=tag:!ipxe,X86-64_EFI,"livestrap: {_efi_pxe_name(opts)}",'
            f"{_efi_pxe_file(opts)}",
        ]
    lines.append(f"dhcp-boot=tag:ipxe,{script}")
    if opts.http_boot:
        lines.append(f"dhcp-boot=tag:http,tag:efi64http,tag:!ipxe,{loader}")
    return lines
