"""Agent-shaped facts for many machines (the keys livestrap.agent.collect sends), and the
discovery report that carries them: the console tests and its benchmark share them."""

from __future__ import annotations

import uuid
from typing import Any

from livestrap.agent.report import facts_hash

VENDORS = (("Dell Inc.", "PowerEdge R650"), ("HPE", "ProLiant DL360 Gen10"),
           ("Supermicro", "SYS-1029P-WTR"), ("Lenovo", "ThinkSystem SR630"))  # fmt: skip


def machine_facts(n: int, **system: Any) -> dict[str, Any]:
    """Machine number n: 2 NICs with LLDP, 2 disks, 8 DIMMs, a dozen PCI devices."""
    vendor, product = VENDORS[n % len(VENDORS)]
    macs = [f"b8:ca:3a:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}:{port:02x}" for port in (1, 2)]
    return {
        "system": {"vendor": vendor, "product": product, "serial": f"SN{n:07d}",
                   "uuid": str(uuid.UUID(int=n + 1)), "firmware": "uefi",
                   "image_id": "img-1", "kernel": "6.1.0-18-amd64"} | system,
        "cpu": {"model": "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "sockets": 2,
                "cores": 64, "threads": 128,
                "flags": {"virtualization": "vmx", "aes": True, "avx": True}},
        "memory": {"total": 256 * 2**30, "dimms": [
            {"locator": f"DIMM_A{i}", "size": 32 * 2**30, "type": "DDR4", "speed": 3200,
             "manufacturer": "Samsung", "serial": f"M{n:06d}{i}", "part": "M393A4K40DB3"}
            for i in range(8)]},
        "disks": [
            {"name": name, "size": 960 * 10**9, "model": "SAMSUNG MZ7LH960",
             "serial": f"S{n:06d}{i}", "wwn": None, "rotational": False, "removable": False,
             "transport": "sata",
             "links": {"by_id": [f"ata-SAMSUNG_S{n:06d}{i}"], "by_path": []}}
            for i, name in enumerate(("sda", "sdb"))],
        "nics": [
            {"name": f"eno{i + 1}", "mac": mac, "driver": "ice", "pci_address": f"0000:3b:00.{i}",
             "operstate": "up", "carrier": True, "speed": 25000, "duplex": "full",
             "pxe": i == 0, "addresses": [{"family": "ipv4", "address": f"10.0.{n % 250}.{i + 2}",
                                          "prefixlen": 24, "scope": "global"}] if i == 0 else [],
             "lldp": {"chassis_name": f"leaf-{n % 40:02d}", "chassis_id": "00:1c:73:aa:bb:cc",
                      "port_id": f"Ethernet{n % 48 + 1}/{i + 1}", "port_descr": "server port"}}
            for i, mac in enumerate(macs)],
        "pci": [
            {"address": f"0000:{bus:02x}:00.0", "class": "0x020000", "vendor": "0x8086",
             "device": "0x159b", "subsystem_vendor": "0x8086", "subsystem_device": "0x0003",
             "driver": "ice", "class_name": "Ethernet controller",
             "vendor_name": "Intel Corporation",
             "device_name": "Ethernet Controller E810-XXV"}
            for bus in range(12)],
    }  # fmt: skip


def report_body(facts: dict[str, Any] | None, boot_mac: str, node_id: str | None = None,
                uptime_s: int = 90) -> dict[str, Any]:  # fmt: skip
    """A discovery report as livestrap.agent.report sends it (facts, or a heartbeat)."""
    return {
        "agent_version": "0.1.0",
        "image_id": "img-1",
        "boot_mac": boot_mac,
        "node_id": node_id,
        "facts_hash": facts_hash(facts) if facts else None,
        "facts": facts,
        "failures": [],
        "uptime_s": uptime_s,
    }
