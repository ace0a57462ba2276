"""A node UEFI-HTTP-boots through a real dnsmasq with no TFTP at all, and registers.

The test's own network namespace (tests/netns.py): a bridge 10.213.7.1/24 with a tap for
QEMU. In it run dnsmasq with `render_dnsmasq_config(..., tftp=False, http_boot=True)`
(DHCP 10.213.7.100-150; no `enable-tftp`), the master on the e2e image (read-only; the
database is the test's own) and an OVMF node (Debian's OVMF_CODE_4M.fd, not the Secure
Boot build) whose NIC has no option ROM. OVMF's PXE is switched off through fw_cfg
(opt/org.tianocore/IPv4PXESupport, IPv6PXESupport), so the NIC's boot options are
OVMF's HttpBootDxe's "UEFI HTTPv4/HTTPv6" ones:

firmware DHCP (vendor class HTTPClient, arch 16) -> dnsmasq answers option 60 HTTPClient
and the URL /boot/efi/ipxe.efi -> the firmware fetches Debian's ipxe.efi from the master
-> iPXE DHCPs again (user class iPXE) -> the script URL -> kernel, initrd, squashfs -> the
agent registers.

- full: this dnsmasq is the DHCP server (10.213.7.100-150).
- proxy: a plain DHCP server (another dnsmasq, with no boot options, at 10.213.7.2 on the
  far end of a veth pair on the bridge: each dnsmasq's DHCP socket is bound to its own
  interface) hands out the addresses; ours is proxy-DHCP on the bridge. Its proxy offer
  carries option 60 HTTPClient and the URL, and OVMF pairs it with the address offer.
  And the node boots through a rack cache (`render_rack_config`, a real nginx in the
  namespace on port CACHE_PORT): dnsmasq hands out the cache's URLs, the boot script
  fetched through it points back at it, the files come from its disk, and the timeline
  is whole from its reports (issue 18).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from helpers import open_to_nginx, skip_missing
from livestrap import bootpaths
from livestrap.netboot.dnsmasq import EFI_IPXE, IPXE_DIR, DnsmasqOptions, render_dnsmasq_config
from livestrap.netboot.qemu import OVMF_CODE, OVMF_VARS, NodeSpec
from livestrap.netboot.rackcache import RackOptions, render_rack_config
from netns import BRIDGE, TAP, Netns, network_namespace
from netnsboot import E2E_DATA, PORT, handed, start_servers, tail, which

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from nginxproc import main_config

pytestmark = pytest.mark.integration

DHCP_RANGE = ("10.213.7.100", "10.213.7.150")
REGISTER_TIMEOUT_S = 420
VM_MAX_S = REGISTER_TIMEOUT_S + 60  # QEMU is also bounded on its own (coreutils timeout)
BOOT_ORDER = ["loader", "script", "kernel", "initrd", "squashfs-start", "squashfs-end", "report"]
TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "dnsmasq": "dnsmasq-base", "curl": "curl",
         "timeout": "coreutils"}  # fmt: skip
NO_PXE = ("opt/org.tianocore/IPv4PXESupport", "opt/org.tianocore/IPv6PXESupport")
PRIMARY_IF, PRIMARY_PEER, PRIMARY_ADDRESS = "vdhcp", "vdhcp-br", "10.213.7.2/24"
CACHE_PORT = 8090


def start_rack_cache(ns: Netns, workdir: Path, master_url: str) -> Path:
    """nginx with the rendered rack cache site in the namespace; its prefix folder."""
    prefix, cache = workdir / "nginx", workdir / "nginx" / "cache"
    cache.mkdir(parents=True)
    cache.chmod(0o777)  # nginx's workers run as nobody
    open_to_nginx(prefix)
    site = render_rack_config(RackOptions(masters=(master_url,), cache_dir=str(cache),
                                          listen=f"{ns.host}:{CACHE_PORT}"))  # fmt: skip
    (prefix / "nginx.conf").write_text(main_config(prefix, site))
    ns.start(["nginx", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
             workdir / "nginx.log")  # fmt: skip
    return prefix


def require_tools() -> None:
    missing = [f"{tool} (apt-get install {pkg})" for tool, pkg in TOOLS.items() if not which(tool)]
    if not (Path(IPXE_DIR) / EFI_IPXE).exists():
        missing.append(f"{Path(IPXE_DIR) / EFI_IPXE} (apt-get install ipxe)")
    if not (OVMF_CODE.is_file() and OVMF_VARS.is_file()):
        missing.append(f"{OVMF_CODE} (apt-get install ovmf)")
    if missing:
        skip_missing(", ".join(missing))
    if not (E2E_DATA / "active").exists():
        pytest.skip(f"no active image in {E2E_DATA}: run the e2e tier once (it builds one)")


def qemu_argv(spec: NodeSpec, workdir: Path) -> list[str]:
    """OVMF (no Secure Boot), the NIC on the namespace's tap without an option ROM, and
    OVMF's PXE off: only its HTTP boot options are left to boot from."""
    shutil.copyfile(OVMF_VARS, workdir / "OVMF_VARS.fd")
    argv = ["timeout", "--kill-after=10", str(VM_MAX_S), "qemu-system-x86_64"]
    argv += ["-name", spec.name, "-accel", "tcg", "-cpu", "qemu64", "-machine", "q35"]
    argv += ["-m", str(spec.memory_mib), "-smp", str(spec.cpus)]
    argv += ["-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot"]
    argv += ["-serial", f"file:{workdir / 'console.log'}"]
    argv += ["-smbios", f"type=1,manufacturer={spec.vendor},product={spec.product},"
             f"serial={spec.smbios_serial},uuid={spec.system_uuid}"]  # fmt: skip
    argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"]
    argv += ["-drive", f"if=pflash,format=raw,unit=1,file={workdir / 'OVMF_VARS.fd'}"]
    for name in NO_PXE:
        argv += ["-fw_cfg", f"name={name},string=no"]
    argv += ["-netdev", f"tap,id=net0,ifname={TAP},script=no,downscript=no"]
    argv += ["-device", f"virtio-net-pci,netdev=net0,mac={spec.mac(0)},bootindex=1,romfile="]
    return argv


def start_primary_dhcp(ns: Netns, workdir: Path) -> subprocess.Popen[bytes]:
    """The network's own DHCP server, for the proxy case: addresses, no boot options."""
    steps = [
        ["link", "add", PRIMARY_IF, "type", "veth", "peer", "name", PRIMARY_PEER],
        ["link", "set", PRIMARY_PEER, "master", BRIDGE],
        ["link", "set", PRIMARY_PEER, "up"],
        ["addr", "add", PRIMARY_ADDRESS, "dev", PRIMARY_IF],
        ["link", "set", PRIMARY_IF, "up"],
    ]
    for step in steps:
        done = subprocess.run(["ip", "-n", ns.name, *step], capture_output=True, text=True,
                              timeout=30, check=False)  # fmt: skip
        assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
    conf = workdir / "primary.conf"
    conf.write_text(f"port=0\nlog-dhcp\ninterface={PRIMARY_IF}\nbind-interfaces\n"
                    f"dhcp-range={DHCP_RANGE[0]},{DHCP_RANGE[1]},1h\n")  # fmt: skip
    return ns.start([str(which("dnsmasq")), "--keep-in-foreground", "--log-facility=-",
                     f"--conf-file={conf}", f"--pid-file={workdir / 'primary.pid'}",
                     f"--dhcp-leasefile={workdir / 'primary.leases'}"],
                    workdir / "primary.log")  # fmt: skip


def boot_one(mode: str, workdir: Path) -> str:
    """One mode in a namespace of its own; the boot's figures, or AssertionError (with
    the logs printed)."""
    logs = [workdir / n for n in ("dnsmasq.log", "master.log", "qemu.log", "primary.log")]
    with network_namespace() as ns:
        base_url = f"http://{ns.host}:{PORT}"
        boot_url = f"http://{ns.host}:{CACHE_PORT}" if mode == "proxy" else base_url
        conf = workdir / "dnsmasq.conf"
        dhcp = {"dhcp_range": DHCP_RANGE} if mode == "full" else {"proxy_subnet": "10.213.7.0/24"}
        text = render_dnsmasq_config(DnsmasqOptions(
            master_url=boot_url, interface=BRIDGE, tftp=False, http_boot=True, **dhcp,
        ))  # fmt: skip
        assert "tftp" not in text
        conf.write_text(text)
        env = {}
        if mode == "proxy":
            start_primary_dhcp(ns, workdir)
            cache = start_rack_cache(ns, workdir, base_url)
            logs.append(cache / "error.log")
            env["LIVESTRAP_TRUSTED_PROXIES"] = f"127.0.0.1 {ns.host}"  # the cache
        servers = start_servers(ns, conf, workdir, f"{ns.host}:{PORT}", base_url, env)
        api = servers.api
        try:
            spec = NodeSpec(name=f"netns-http-{mode}", firmware="uefi",
                            serial=f"NETNS-HTTP-{mode.upper()}")  # fmt: skip
            (workdir / "console.log").write_bytes(b"")
            t0 = time.time()
            vm = ns.start(qemu_argv(spec, workdir), logs[2])
            node = None
            while time.time() - t0 < REGISTER_TIMEOUT_S and vm.poll() is None:
                node = api.node(spec.mac(0))
                if node:
                    break
                time.sleep(3)
            took = time.time() - t0
            assert node, f"{mode}: not registered within {took:.0f} s (QEMU exit: {vm.poll()})"

            system = node["facts"]["system"]
            assert system["serial"] == spec.smbios_serial and system["firmware"] == "uefi"
            events = api.get(f"/api/v1/nodes/{node['id']}/timeline")
            kinds = [e["kind"] for e in events]
            assert [k for k in kinds if k in BOOT_ORDER][: len(BOOT_ORDER)] == BOOT_ORDER, kinds
            loader = next(e for e in events if e["kind"] == "loader")
            assert loader["detail"] == {"name": EFI_IPXE}, loader
            first, last = (ipaddress.IPv4Address(a) for a in DHCP_RANGE)
            ips = {e["ip"] for e in events if e["kind"] in BOOT_ORDER}
            assert len(ips) == 1 and first <= ipaddress.IPv4Address(ips.pop()) <= last, events
            at = {e["kind"]: datetime.fromisoformat(e["at"]).timestamp()
                  for e in reversed(events)}  # each kind's first time  # fmt: skip

            log = logs[0].read_text(errors="replace")
            assert "vendor class: HTTPClient" in log, log
            assert handed(log, bootpaths.loader_url(boot_url, EFI_IPXE)), log
            assert handed(log, bootpaths.script_url(boot_url)), log
            if mode == "proxy":
                assert "proxy" in log and "DHCPOFFER" not in log, log  # no address from us
                via = {e["kind"]: e["detail"].get("via") for e in events}
                assert via["kernel"] == via["squashfs-end"] == "rack", events  # its reports
                assert "[error]" not in logs[-1].read_text(errors="replace")
            assert "user class: iPXE" in log, log
            assert "dnsmasq-tftp" not in log, log  # no TFTP server ran (its lines' prefix)
            return (
                f"uefi http ({mode}): power-on -> registered {took:.0f} s (loader at "
                f"{at['loader'] - t0:.0f} s, script {at['script'] - t0:.0f} s, "
                f"kernel {at['kernel'] - t0:.0f} s, report {at['report'] - t0:.0f} s)"
            )
        except BaseException:
            print(f"=== {mode}", tail(workdir / "console.log"), *(tail(p) for p in logs),
                  sep="\n")  # fmt: skip
            raise


@pytest.mark.timeout(REGISTER_TIMEOUT_S + 300)
def test_node_uefi_http_boots_without_tftp(tmp_path: Path) -> None:
    """Both modes at once, each in its own namespace (same addresses, separate links):
    two TCG guests on two cores take about as long as one after the other would take
    apiece, and the suite saves one boot's time."""
    require_tools()
    modes = ("full", "proxy")
    for mode in modes:
        (tmp_path / mode).mkdir()
    with ThreadPoolExecutor(max_workers=len(modes)) as pool:
        futures = {mode: pool.submit(boot_one, mode, tmp_path / mode) for mode in modes}
        failures = []
        for mode, future in futures.items():
            try:
                print(future.result())
            except AssertionError as err:
                failures.append(f"{mode}: {err}")
    assert not failures, "\n".join(failures)
