"""A node PXE-boots through a real dnsmasq on a real L2 link: no slirp, no guestfwd.

The test makes a network namespace of its own (tests/netns.py): a bridge 10.213.7.1/24
with a tap for QEMU. Inside it run dnsmasq with the configuration that
`render_dnsmasq_config` writes (DHCP 10.213.7.100-150, TFTP of Debian's iPXE, the
chain to the master), the master (`livestrap serve --listen 10.213.7.1:8080`) on the
image already built for the e2e tier (read-only: the database is the test's own), and
a QEMU node on the tap.

- bios: SeaBIOS with QEMU's virtio-net option ROM, which is iPXE itself: its first DHCP
  already carries the user class `iPXE`, so dnsmasq hands it the master's script URL.
- uefi: OVMF's own PXE (the NIC has no option ROM): dnsmasq hands `ipxe.efi` over
  TFTP, that iPXE asks again with its user class and gets the script URL.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import TEST_CACHE, skip_missing
from livestrap.netboot.dnsmasq import (
    BIOS_IPXE,
    EFI_IPXE,
    IPXE_DIR,
    DnsmasqOptions,
    render_dnsmasq_config,
)
from livestrap.netboot.qemu import OVMF_CODE, OVMF_VARS, Firmware, NodeSpec
from netns import BRIDGE, TAP, Netns, network_namespace

pytestmark = pytest.mark.integration

E2E_DATA = TEST_CACHE / "e2e-data"
PORT = 8080  # the namespace is the test's own: nothing else listens in it
DHCP_RANGE = ("10.213.7.100", "10.213.7.150")
REGISTER_TIMEOUT_S = 420
VM_MAX_S = REGISTER_TIMEOUT_S + 60  # QEMU is also bounded on its own (coreutils timeout)
BOOT_ORDER = ["script", "kernel", "initrd", "squashfs-start", "squashfs-end", "report"]
TOOLS = {
    "qemu-system-x86_64": "qemu-system-x86",
    "dnsmasq": "dnsmasq-base",
    "curl": "curl",
    "timeout": "coreutils",
}


def which(tool: str) -> str | None:
    """Also in sbin, which a non-login root shell may lack on its PATH."""
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def require_tools(firmware: Firmware) -> None:
    missing = [f"{tool} (apt-get install {pkg})" for tool, pkg in TOOLS.items() if not which(tool)]
    for path, pkg in ((Path(IPXE_DIR) / BIOS_IPXE, "ipxe"), (Path(IPXE_DIR) / EFI_IPXE, "ipxe")):
        if not path.exists():
            missing.append(f"{path} (apt-get install {pkg})")
    if firmware == "uefi" and not (OVMF_CODE.is_file() and OVMF_VARS.is_file()):
        missing.append(f"{OVMF_CODE} (apt-get install ovmf)")
    if missing:
        skip_missing(", ".join(missing))
    if not (E2E_DATA / "active").exists():
        pytest.skip(f"no active image in {E2E_DATA}: run the e2e tier once (it builds one)")


class NamespaceMaster:
    """The master's admin API as seen from inside the namespace (curl run there)."""

    def __init__(self, ns: Netns, data_dir: Path, workdir: Path) -> None:
        self.ns = ns
        self.url = f"http://{ns.host}:{PORT}"
        self.token = data_dir / "admin.token"
        self.header = workdir / "admin.header"  # curl -H @file: no token in argv

    def auth_header(self) -> Path:
        """The header file, written on first use: the master makes its token as it starts,
        so a data dir no master has served yet has none before then."""
        if not self.header.exists():
            self.header.write_text(f"Authorization: Bearer {self.token.read_text()}")
            self.header.chmod(0o600)
        return self.header

    def get(self, path: str) -> Any:
        done = self.ns.run(["curl", "-sf", "--max-time", "10", "-H", f"@{self.auth_header()}",
                            self.url + path])  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else None

    def healthy(self) -> bool:
        done = self.ns.run(["curl", "-sf", "--max-time", "2", f"{self.url}/healthz"])
        return done.returncode == 0

    def node(self, mac: str) -> dict[str, Any] | None:
        listed = self.get(f"/api/v1/nodes?mac={mac}")
        if not listed:
            return None
        node: dict[str, Any] | None = self.get(f"/api/v1/nodes/{listed[0]['id']}")
        return node


def qemu_argv(spec: NodeSpec, workdir: Path) -> list[str]:
    """Like livestrap.netboot.qemu.qemu_argv, but the NIC is the namespace's tap."""
    argv = ["timeout", "--kill-after=10", str(VM_MAX_S), "qemu-system-x86_64"]
    argv += ["-name", spec.name, "-accel", "tcg", "-cpu", "qemu64"]
    argv += ["-m", str(spec.memory_mib), "-smp", str(spec.cpus)]
    argv += ["-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot"]
    argv += ["-serial", f"file:{workdir / 'console.log'}"]
    argv += ["-smbios", f"type=1,manufacturer={spec.vendor},product={spec.product},"
             f"serial={spec.smbios_serial},uuid={spec.system_uuid}"]  # fmt: skip
    nic = f"virtio-net-pci,netdev=net0,mac={spec.mac(0)},bootindex=1"
    if spec.firmware == "uefi":
        shutil.copyfile(OVMF_VARS, workdir / "OVMF_VARS.fd")
        argv += ["-machine", "q35"]
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"]
        argv += ["-drive", f"if=pflash,format=raw,unit=1,file={workdir / 'OVMF_VARS.fd'}"]
        nic += ",romfile="  # no iPXE ROM: OVMF's own PXE must fetch ipxe.efi over TFTP
    argv += ["-netdev", f"tap,id=net0,ifname={TAP},script=no,downscript=no"]
    argv += ["-device", nic]
    return argv


def handed(log: str, bootfile: str) -> bool:
    """Did dnsmasq hand out `bootfile`? In the BOOTP file field (`bootfile name: X`) or,
    to a client that asked for it (iPXE does), as option 67."""
    pattern = r"(bootfile name: |option: 67 bootfile-name +)" + re.escape(bootfile) + "$"
    return re.search(pattern, log, re.MULTILINE) is not None


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name}: missing)"
    return f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


@pytest.mark.timeout(REGISTER_TIMEOUT_S + 300)
@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_node_pxe_boots_through_dnsmasq(tmp_path: Path, firmware: Firmware) -> None:
    require_tools(firmware)
    logs = [tmp_path / "dnsmasq.log", tmp_path / "master.log", tmp_path / "qemu.log"]
    with network_namespace() as ns:
        base_url = f"http://{ns.host}:{PORT}"
        conf = tmp_path / "dnsmasq.conf"
        conf.write_text(render_dnsmasq_config(DnsmasqOptions(
            master_url=base_url, interface=BRIDGE, dhcp_range=DHCP_RANGE, tftp_root=IPXE_DIR,
        )))  # fmt: skip
        dnsmasq = ns.start([str(which("dnsmasq")), "--keep-in-foreground", "--log-facility=-",
                            f"--conf-file={conf}", f"--pid-file={tmp_path / 'dnsmasq.pid'}",
                            f"--dhcp-leasefile={tmp_path / 'dnsmasq.leases'}"],
                           logs[0])  # fmt: skip
        master = ns.start([sys.executable, "-m", "livestrap", "serve", "--data-dir",
                           str(E2E_DATA), "--listen", f"{ns.host}:{PORT}", "--public-url",
                           base_url, "--database-url", f"sqlite:///{tmp_path / 'db.sqlite'}"],
                          logs[1])  # fmt: skip
        api = NamespaceMaster(ns, E2E_DATA, tmp_path)
        try:
            deadline = time.monotonic() + 60
            while not api.healthy():
                assert dnsmasq.poll() is None, f"dnsmasq exited\n{tail(logs[0])}"
                assert master.poll() is None, f"master exited\n{tail(logs[1])}"
                assert time.monotonic() < deadline, f"master not up in 60 s\n{tail(logs[1])}"
                time.sleep(0.5)

            spec = NodeSpec(name=f"netns-{firmware}", firmware=firmware,
                            serial=f"NETNS-{firmware.upper()}-1")  # fmt: skip
            (tmp_path / "console.log").write_bytes(b"")
            t0 = time.monotonic()
            vm = ns.start(qemu_argv(spec, tmp_path), logs[2])
            node = None
            while time.monotonic() - t0 < REGISTER_TIMEOUT_S and vm.poll() is None:
                node = api.node(spec.mac(0))
                if node:
                    break
                time.sleep(3)
            took = time.monotonic() - t0
            print(f"{firmware}: QEMU start -> registered in {took:.0f} s")
            assert node, f"not registered within {took:.0f} s (QEMU exit: {vm.poll()})"

            system = node["facts"]["system"]
            assert system["serial"] == spec.smbios_serial
            assert system["uuid"].lower() == spec.system_uuid
            assert system["firmware"] == firmware
            nics = {n["mac"]: n for n in node["facts"]["nics"]}
            assert nics[spec.mac(0)]["pxe"] is True
            events = api.get(f"/api/v1/nodes/{node['id']}/timeline")
            kinds = [e["kind"] for e in events]
            assert [k for k in kinds if k in BOOT_ORDER][: len(BOOT_ORDER)] == BOOT_ORDER, kinds
            # every step came straight from the node, at the address dnsmasq leased it
            first, last = (ipaddress.IPv4Address(a) for a in DHCP_RANGE)
            ips = {e["ip"] for e in events if e["kind"] in BOOT_ORDER}
            assert len(ips) == 1 and first <= ipaddress.IPv4Address(ips.pop()) <= last, events

            log = logs[0].read_text(errors="replace")
            assert handed(log, f"{base_url}/boot/ipxe?mac=${{net0/mac}}"), log
            assert "user class: iPXE" in log, log
            if firmware == "uefi":
                assert handed(log, EFI_IPXE), log
                assert f"sent {IPXE_DIR}/{EFI_IPXE} to" in log, log
        except BaseException:
            print(tail(tmp_path / "console.log"), *(tail(p) for p in logs), sep="\n")
            raise
