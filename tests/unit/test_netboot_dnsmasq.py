"""netboot.dnsmasq (and .dnsmasq6): the exact text of every variant, and the options it
refuses. tests/integration/test_netns_*.py run these configs in a real dnsmasq."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from livestrap.cli import app
from livestrap.netboot.dnsmasq import DnsmasqOptions, check_options, render_dnsmasq_config

pytestmark = pytest.mark.unit

MASTER = "http://192.0.2.10:8080"
MASTER6 = "http://[2001:db8::10]:8080"
RANGE = ("192.0.2.100", "192.0.2.150")
RANGE6 = ("2001:db8::100", "2001:db8::1ff")
HEAD = (
    "# livestrap: network boot PXE or UEFI HTTP -> iPXE -> the master (generated; edit\n"
    "# the options, not this file: livestrap netboot dnsmasq-config)\n"
    "port=0\n"
    "log-dhcp\n"
)
TFTP = "enable-tftp\ntftp-root=/usr/lib/ipxe\n"
USER_CLASS = "dhcp-userclass=set:ipxe,iPXE\n"
PXE_TAGS = (
    "dhcp-vendorclass=set:pxe,PXEClient\n"
    "dhcp-match=set:efi64,option:client-arch,7\n"
    "dhcp-match=set:efi64,option:client-arch,9\n"
)
HTTP_TAGS = "dhcp-vendorclass=set:http,HTTPClient\ndhcp-match=set:efi64http,option:client-arch,16\n"
SCRIPT = "dhcp-boot=tag:ipxe,http://192.0.2.10:8080/boot/ipxe?mac=${net0/mac}\n"
PXE_BOOT = (
    "dhcp-boot=tag:pxe,tag:!ipxe,tag:efi64,ipxe.efi\n"
    "dhcp-boot=tag:pxe,tag:!ipxe,tag:!efi64,undionly.kpxe\n"
)
HTTP_BOOT = (
    "dhcp-option-force=tag:http,tag:efi64http,tag:!ipxe,option:vendor-class,HTTPClient\n"
    "dhcp-boot=tag:http,tag:efi64http,tag:!ipxe,http://192.0.2.10:8080/boot/efi/ipxe.efi\n"
)
V6 = (
    "dhcp-range=2001:db8::100,2001:db8::1ff,64,1h\n"
    "enable-ra\n"
    "dhcp-option=tag:ipxe,option6:bootfile-url,http://[2001:db8::10]:8080/boot/ipxe?mac=${net0/mac}\n"
)
V6_HTTP = (
    "dhcp-match=set:efi64http6,option6:61,16\n"
    "dhcp-option-force=tag:efi64http6,tag:!ipxe,option6:16,"
    "00:00:01:57:00:0a:48:54:54:50:43:6c:69:65:6e:74\n"  # 343, 10, "HTTPClient"
    "dhcp-option=tag:efi64http6,tag:!ipxe,option6:bootfile-url,"
    "http://[2001:db8::10]:8080/boot/efi/ipxe.efi\n"
)
FULL = "dhcp-range=192.0.2.100,192.0.2.150,1h\n"
PROXY = "dhcp-range=192.0.2.0,proxy,255.255.255.0\n"
PROXY_PXE = (
    'pxe-service=tag:!ipxe,x86PC,"livestrap: iPXE (BIOS)",undionly\n'
    'pxe-service=tag:!ipxe,X86-64_EFI,"livestrap: iPXE (UEFI)",ipxe.efi\n'
)
PROXY_HTTP = "dhcp-boot=tag:http,tag:efi64http,tag:!ipxe,http://192.0.2.10:8080/boot/efi/ipxe.efi\n"
PROMPT = 'pxe-prompt="livestrap",0\n'
PXE_VENDORS = "dhcp-pxe-vendor=PXEClient,HTTPClient\n"

VARIANTS = {
    "full": (
        DnsmasqOptions(MASTER, interface="eth1", dhcp_range=RANGE),
        HEAD + "interface=eth1\nbind-interfaces\n" + TFTP + USER_CLASS + PXE_TAGS + HTTP_TAGS
        + FULL + SCRIPT + PXE_BOOT + HTTP_BOOT,
    ),
    "full, no HTTP boot (the config before HTTP boot)": (
        DnsmasqOptions(MASTER, dhcp_range=RANGE, http_boot=False),
        HEAD + TFTP + USER_CLASS + PXE_TAGS + FULL + SCRIPT + PXE_BOOT,
    ),
    "full, HTTP boot only: no TFTP": (
        DnsmasqOptions(MASTER, dhcp_range=RANGE, tftp=False),
        HEAD + USER_CLASS + HTTP_TAGS + FULL + SCRIPT + HTTP_BOOT,
    ),
    "proxy": (
        DnsmasqOptions(MASTER, proxy_subnet="192.0.2.0/24"),
        HEAD + TFTP + USER_CLASS + PXE_TAGS + HTTP_TAGS + PROXY + PXE_VENDORS + PROMPT
        + PROXY_PXE + SCRIPT + PROXY_HTTP,
    ),
    "proxy, no HTTP boot": (
        DnsmasqOptions(MASTER, proxy_subnet="192.0.2.0/24", http_boot=False),
        HEAD + TFTP + USER_CLASS + PXE_TAGS + PROXY + PROMPT + PROXY_PXE + SCRIPT,
    ),
    "proxy, HTTP boot only": (
        DnsmasqOptions(MASTER, proxy_subnet="192.0.2.0/24", tftp=False),
        HEAD + USER_CLASS + HTTP_TAGS + PROXY + PXE_VENDORS + PROMPT + SCRIPT + PROXY_HTTP,
    ),
    "full, Secure Boot: UEFI PXE gets shim from the TFTP tree": (
        DnsmasqOptions(MASTER, dhcp_range=RANGE, secure_boot=True, tftp_root="/srv/tftp"),
        HEAD + TFTP.replace("/usr/lib/ipxe", "/srv/tftp") + USER_CLASS + PXE_TAGS + HTTP_TAGS
        + FULL + SCRIPT + PXE_BOOT.replace(",ipxe.efi", ",shimx64.efi") + HTTP_BOOT,
    ),
    "proxy, Secure Boot": (
        DnsmasqOptions(MASTER, proxy_subnet="192.0.2.0/24", secure_boot=True, tftp_root="/srv/t"),
        HEAD + TFTP.replace("/usr/lib/ipxe", "/srv/t") + USER_CLASS + PXE_TAGS + HTTP_TAGS
        + PROXY + PXE_VENDORS + PROMPT
        + PROXY_PXE.replace('"livestrap: iPXE (UEFI)",ipxe.efi',
                            '"livestrap: shim -> GRUB (UEFI, Secure Boot)",shimx64.efi')
        + SCRIPT + PROXY_HTTP,
    ),
    "full, DHCPv6": (
        DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=RANGE6, master_url_v6=MASTER6),
        HEAD + TFTP + USER_CLASS + PXE_TAGS + HTTP_TAGS + FULL + SCRIPT + PXE_BOOT + HTTP_BOOT
        + V6 + V6_HTTP,
    ),
    "full, DHCPv6, no HTTP boot": (
        DnsmasqOptions(MASTER, dhcp_range=RANGE, http_boot=False, dhcp_range_v6=RANGE6,
                       master_url_v6=MASTER6),
        HEAD + TFTP + USER_CLASS + PXE_TAGS + FULL + SCRIPT + PXE_BOOT + V6,
    ),
    "proxy, DHCPv6": (
        DnsmasqOptions(MASTER, proxy_subnet="192.0.2.0/24", tftp=False, dhcp_range_v6=RANGE6,
                       master_url_v6=MASTER6),
        HEAD + USER_CLASS + HTTP_TAGS + PROXY + PXE_VENDORS + PROMPT + SCRIPT + PROXY_HTTP
        + V6 + V6_HTTP,
    ),
}  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
def test_dnsmasq_config_exact(variant: str) -> None:
    opts, expected = VARIANTS[variant]
    assert check_options(opts) == []
    assert render_dnsmasq_config(opts) == expected


@pytest.mark.parametrize("variant", VARIANTS)
def test_dnsmasq_accepts_every_variant(variant: str, tmp_path: Path) -> None:
    """dnsmasq's own syntax check, where dnsmasq is installed (it needs no root)."""
    dnsmasq = shutil.which("dnsmasq", path="/usr/sbin:/sbin:/usr/bin")
    if dnsmasq is None:
        pytest.skip("no dnsmasq (apt-get install dnsmasq-base)")
    conf = tmp_path / "dnsmasq.conf"
    conf.write_text(render_dnsmasq_config(VARIANTS[variant][0]))
    done = subprocess.run([dnsmasq, "--test", f"--conf-file={conf}"], capture_output=True,
                          text=True, timeout=30, check=False)  # fmt: skip
    assert done.returncode == 0 and "syntax check OK" in done.stderr, done.stderr


def test_v6_url_from_a_named_boot_url() -> None:
    opts = DnsmasqOptions("http://boot.example:8080", dhcp_range=RANGE, dhcp_range_v6=RANGE6)
    assert check_options(opts) == []
    text = render_dnsmasq_config(opts)
    assert "option6:bootfile-url,http://boot.example:8080/boot/ipxe?mac=${net0/mac}\n" in text
    assert "option6:bootfile-url,http://boot.example:8080/boot/efi/ipxe.efi\n" in text


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        (DnsmasqOptions(MASTER), "choose one of"),
        (DnsmasqOptions(MASTER, dhcp_range=("1.2.3.4", "x"), proxy_subnet="1.2.3.0/24"), "one of"),
        (DnsmasqOptions(MASTER, dhcp_range=("1.2.3.4", "nope")), "'nope' is not an IPv4"),
        (DnsmasqOptions(MASTER, proxy_subnet="1.2.3.0/40"), "not an IPv4 subnet"),
        (DnsmasqOptions("https://m:8443", proxy_subnet="1.2.3.0/24"), "needs an http://"),
        (DnsmasqOptions("http://m:1/a,b", dhcp_range=RANGE), "no spaces, commas"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, tftp=False, http_boot=False), "no firmware"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=RANGE6), "needs --boot-url-v6"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, master_url_v6=MASTER6), "needs --dhcp-range-v6"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=("2001:db8::1", "x"),
                        master_url_v6=MASTER6), "'x' is not an IPv6"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=("2001:db8::1", "2001:db9::1"),
                        master_url_v6=MASTER6), "not a range of one /64"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=("2001:db8::9", "2001:db8::1"),
                        master_url_v6=MASTER6), "not a range of one /64"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=RANGE6,
                        master_url_v6="http://192.0.2.10:8080"), "an IPv4 address in the IPv6"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=RANGE6,
                        master_url_v6="https://[2001:db8::10]"), "expected http://[ADDRESS]"),
        (DnsmasqOptions(MASTER, dhcp_range=RANGE, dhcp_range_v6=RANGE6,
                        master_url_v6="http://[2001:db8::10]/a b"), "no spaces, commas"),
    ],
)  # fmt: skip
def test_dnsmasq_bad_options(opts: DnsmasqOptions, problem: str) -> None:
    assert any(problem in p for p in check_options(opts)), check_options(opts)


def test_cli_options_reach_the_renderer() -> None:
    argv = ["netboot", "dnsmasq-config", "--boot-url", MASTER, "--proxy-dhcp", "192.0.2.0/24",
            "--no-tftp", "--dhcp-range-v6", ",".join(RANGE6), "--boot-url-v6", MASTER6]  # fmt: skip
    done = CliRunner().invoke(app, argv)
    assert done.exit_code == 0, done.output
    assert done.stdout == VARIANTS["proxy, DHCPv6"][1]
    off = CliRunner().invoke(app, [*argv[:7], "--no-http-boot"])
    assert off.exit_code != 0 and "no firmware could load iPXE" in str(off.exception)
    plain = CliRunner().invoke(app, ["netboot", "dnsmasq-config", "--boot-url", MASTER,
                                     "--dhcp-range", ",".join(RANGE),
                                     "--no-http-boot"])  # fmt: skip
    assert plain.stdout == VARIANTS["full, no HTTP boot (the config before HTTP boot)"][1]


def test_secure_boot_needs_the_tree_and_tftp() -> None:
    from livestrap.netboot import dnsmasq, tftptree

    assert dnsmasq.SHIM == tftptree.SHIM
    problems = check_options(DnsmasqOptions(MASTER, dhcp_range=RANGE, secure_boot=True))
    assert problems == ["--secure-boot: give --tftp-root the master's TFTP tree (serve "
                        "--tftp-dir, or netboot tftp-tree): it holds shim and GRUB"]  # fmt: skip
    no_tftp = DnsmasqOptions(MASTER, dhcp_range=RANGE, secure_boot=True, tftp=False, tftp_root="/t")
    assert check_options(no_tftp)[0].startswith("--secure-boot needs TFTP")
