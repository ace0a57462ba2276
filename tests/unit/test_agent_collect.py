"""Collectors on fixture roots: a QEMU guest and a capture of this machine's /proc and /sys."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from livestrap.agent import AGENT_VERSION
from livestrap.agent.collect import (
    collect_all,
    collect_cpu,
    collect_disks,
    collect_memory,
    collect_nics,
    collect_pci,
    collect_system,
)
from livestrap.agent.config import AgentConfig
from livestrap.agent.probe import Runner

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agent"
QEMU = FIXTURES / "qemu-guest"
THIS = FIXTURES / "this-machine"
GiB = 1024**3


def replay(root: Path) -> Runner:
    """A runner that answers with the tool output saved under <root>/_tools (None if absent)."""

    def run(argv: list[str]) -> str | None:
        saved = root / "_tools" / "_".join(argv)
        return saved.read_text() if saved.is_file() else None

    return run


def no_tools(argv: list[str]) -> str | None:
    return None


def test_collect_all_qemu_guest() -> None:
    config = AgentConfig(url="http://m", image="img-1", boot_mac="52:54:00:12:34:56")
    report = collect_all(config, root=QEMU, runner=replay(QEMU))
    assert report["agent_version"] == AGENT_VERSION
    facts = report["facts"]
    assert set(facts) == {"system", "cpu", "memory", "disks", "nics", "pci"}
    assert facts["system"] == {
        "vendor": "QEMU",
        "product": "Standard PC (Q35 + ICH9, 2009)",
        "serial": "LS-QEMU-0001",
        "uuid": "6f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8",
        "firmware": "bios",
        "secure_boot": False,
        "boot_path": None,
        "image_id": "img-1",
        "kernel": "6.1.0-18-amd64",
    }
    assert facts["cpu"]["model"] == "Intel Core Processor (Skylake, IBRS)"
    assert (facts["cpu"]["sockets"], facts["cpu"]["cores"], facts["cpu"]["threads"]) == (1, 2, 4)
    assert facts["cpu"]["flags"]["virtualization"] == "vmx"
    assert facts["memory"]["total"] == 4014856 * 1024
    assert [d["size"] for d in facts["memory"]["dimms"]] == [4 * GiB]
    # lldpcli is the only tool missing from the capture
    assert report["failures"] == [
        {
            "collector": "nics",
            "error": "`lldpcli -f keyvalue show neighbors`: tool missing or failed",
        }
    ]
    json.dumps(report)  # the report must be plain JSON


def test_qemu_disks() -> None:
    facts: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    collect_disks(facts, failures, QEMU)
    assert failures == []
    sda, vda = facts["disks"]  # loop0 skipped, sorted by name
    assert sda == {
        "name": "sda",
        "size": 100 * GiB,
        "model": "QEMU HARDDISK",
        "serial": "LSSATA0001",  # from the binary VPD page 0x80
        "wwn": "t10.ATA     QEMU HARDDISK                           LSSATA0001",
        "rotational": True,
        "removable": False,
        "transport": "sata",
        "links": {
            "by_id": ["ata-QEMU_HARDDISK_LSSATA0001"],  # -part1 points at sda1
            "by_path": ["pci-0000:00:1f.2-ata-1", "pci-0000:00:1f.2-ata-1.0"],
        },
    }
    assert vda["size"] == 20 * GiB
    assert (vda["serial"], vda["model"], vda["wwn"]) == ("LSVIRTIO0001", None, None)
    assert vda["transport"] == "virtio"
    assert vda["links"] == {
        "by_id": ["virtio-LSVIRTIO0001"],
        "by_path": ["pci-0000:00:05.0", "virtio-pci-0000:00:05.0"],
    }


def test_qemu_nics() -> None:
    facts: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    collect_nics(facts, failures, QEMU, replay(QEMU), boot_mac="52:54:00:12:34:56")
    virtio, e1000 = facts["nics"]  # lo skipped
    assert virtio == {
        "name": "enp0s3",
        "mac": "52:54:00:12:34:56",
        "driver": "virtio_net",
        "pci_address": "0000:00:03.0",  # the PCI function above virtio0
        "operstate": "up",
        "carrier": True,
        "speed": None,  # sysfs says -1, ethtool "Unknown!"
        "duplex": None,
        "pxe": True,
        "addresses": [
            {"family": "ipv4", "address": "10.0.2.15", "prefixlen": 24, "scope": "global"},
            {
                "family": "ipv6",
                "address": "fec0::5054:ff:fe12:3456",
                "prefixlen": 64,
                "scope": "site",
            },
            {
                "family": "ipv6",
                "address": "fe80::5054:ff:fe12:3456",
                "prefixlen": 64,
                "scope": "link",
            },
        ],
        "lldp": None,
    }
    assert (e1000["name"], e1000["driver"], e1000["pci_address"]) == (
        "enp0s4",
        "e1000",
        "0000:00:04.0",
    )
    assert (e1000["speed"], e1000["duplex"], e1000["pxe"]) == (1000, "full", False)


def test_qemu_nics_with_lldp_neighbour() -> None:
    lldp = (
        "lldp.enp0s3.via=LLDP\n"
        "lldp.enp0s3.chassis.mac=aa:aa:aa:aa:aa:aa\n"
        "lldp.enp0s3.port.ifname=swp1\n"
    )
    saved = replay(QEMU)

    def run(argv: list[str]) -> str | None:
        return lldp if argv[0] == "lldpcli" else saved(argv)

    facts: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    collect_nics(facts, failures, QEMU, run)
    assert failures == []
    assert facts["nics"][0]["lldp"]["port_id"] == "swp1"
    assert facts["nics"][1]["lldp"] is None


def test_qemu_pci_with_and_without_lspci() -> None:
    facts: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    collect_pci(facts, failures, QEMU, replay(QEMU))
    assert failures == []
    by_address = {d["address"]: d for d in facts["pci"]}
    assert len(by_address) == 8
    assert by_address["0000:00:04.0"] == {
        "address": "0000:00:04.0",
        "class": "020000",
        "vendor": "8086",
        "device": "100e",
        "subsystem_vendor": "1af4",
        "subsystem_device": "1100",
        "driver": "e1000",
        "class_name": "Ethernet controller",
        "vendor_name": "Intel Corporation",
        "device_name": "82540EM Gigabit Ethernet Controller",
    }
    assert by_address["0000:00:00.0"]["driver"] is None
    collect_pci(facts, failures, QEMU, no_tools)
    assert facts["pci"][3]["vendor"] == "8086"
    assert facts["pci"][3]["vendor_name"] is None
    assert failures == [{"collector": "pci", "error": "`lspci -vmmnn -D`: tool missing or failed"}]


def test_collect_all_this_machine() -> None:
    report = collect_all(AgentConfig(boot_mac="02:fc:00:00:00:01"), root=THIS, runner=replay(THIS))
    facts = report["facts"]
    assert facts["system"]["firmware"] in ("bios", "uefi")
    assert facts["system"]["kernel"]
    assert facts["cpu"]["threads"] >= 1
    assert facts["memory"]["total"] > 0
    assert facts["disks"], "at least one real disk was captured"
    for disk in facts["disks"]:
        assert not disk["name"].startswith(("loop", "zram", "ram", "dm-", "nbd"))
        assert disk["size"] > 0
    assert facts["nics"], "at least one physical NIC was captured"
    for nic in facts["nics"]:
        assert nic["name"] != "lo"
        assert nic["driver"]
        assert nic["mac"] and len(nic["mac"]) == 17
    assert any(nic["pxe"] for nic in facts["nics"])
    assert all(d["vendor"] and d["class"] for d in facts["pci"])
    collectors = {f["collector"] for f in report["failures"]}
    assert collectors <= {"system", "memory", "nics", "pci"}


def test_missing_tools_are_failures_not_exceptions() -> None:
    report = collect_all(AgentConfig(), root=QEMU, runner=no_tools)
    errors = [(f["collector"], f["error"].split("`")[1]) for f in report["failures"]]
    assert errors == [
        ("memory", "dmidecode -t memory"),
        ("nics", "ip -j addr show"),
        ("nics", "lldpcli -f keyvalue show neighbors"),
        ("nics", "ethtool IFACE"),  # one failure for all NICs
        ("pci", "lspci -vmmnn -D"),
    ]
    assert report["facts"]["memory"]["dimms"] is None
    assert report["facts"]["nics"][0]["addresses"] == []
    assert report["facts"]["nics"][1]["speed"] == 1000  # sysfs still works


def test_unreadable_files_are_failures(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(QEMU, root, symlinks=True)
    for rel in ("proc/cpuinfo", "proc/meminfo", "sys/class/dmi/id/product_serial"):
        (root / rel).unlink()
        (root / rel).mkdir()  # reading a directory fails even as root
    shutil.rmtree(root / "sys/class/net")
    report = collect_all(AgentConfig(), root=root, runner=replay(QEMU))
    failed = {(f["collector"], f["error"].split(": ")[0]) for f in report["failures"]}
    assert ("cpu", str(root / "proc/cpuinfo")) in failed
    assert ("memory", str(root / "proc/meminfo")) in failed
    assert ("system", str(root / "sys/class/dmi/id/product_serial")) in failed
    assert ("nics", str(root / "sys/class/net")) in failed
    facts = report["facts"]
    assert facts["cpu"]["threads"] == 0
    assert facts["memory"]["total"] is None
    assert facts["system"]["serial"] is None
    assert facts["system"]["vendor"] == "QEMU"  # the rest of the collector still ran
    assert facts["nics"] == []
    assert len(facts["disks"]) == 2


def test_no_dmi_and_garbage_sizes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    shutil.copytree(QEMU, root, symlinks=True)
    shutil.rmtree(root / "sys/class/dmi")
    (root / "sys/block/vda/size").write_text("not a number\n")
    (root / "sys/firmware/efi").mkdir()
    facts: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    collect_system(facts, failures, root)
    collect_disks(facts, failures, root)
    assert facts["system"]["vendor"] is None
    assert facts["system"]["firmware"] == "uefi"
    assert facts["system"]["secure_boot"] is None  # UEFI, but no efivarfs to say
    assert facts["disks"][1]["size"] is None
    assert [f["collector"] for f in failures] == ["system", "disks"]
    assert "no DMI/SMBIOS" in failures[0]["error"]


def test_a_crashing_collector_does_not_stop_the_report(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("parser bug")

    monkeypatch.setattr("livestrap.agent.collect.collect_cpu", boom)
    report = collect_all(AgentConfig(), root=QEMU, runner=replay(QEMU))
    assert report["facts"]["cpu"] is None
    assert report["facts"]["memory"]["total"] > 0
    assert {"collector": "cpu", "error": "collector crashed: RuntimeError: parser bug"} in report[
        "failures"
    ]


def test_single_collectors_fill_their_key() -> None:
    facts: dict[str, Any] = {}
    failures: list[dict[str, str]] = []
    collect_cpu(facts, failures, THIS)
    collect_memory(facts, failures, THIS, no_tools)
    assert set(facts) == {"cpu", "memory"}
    assert failures == [
        {"collector": "memory", "error": "`dmidecode -t memory`: tool missing or failed"}
    ]


@pytest.mark.parametrize("tree", [QEMU, THIS], ids=["qemu-guest", "this-machine"])
def test_fixture_symlinks_stay_inside_the_tree(tree: Path) -> None:
    """Sysfs links must be relative and land inside the fixture, never on the host."""
    links = [p for p in tree.rglob("*") if p.is_symlink()]
    assert links
    for link in links:
        target = os.readlink(link)
        assert not os.path.isabs(target), link
        resolved = Path(os.path.normpath(link.parent / target))
        assert resolved.is_relative_to(tree), link


@pytest.mark.parametrize(
    ("variable", "expected"),
    [(b"\x06\x00\x00\x00\x01", True), (b"\x06\x00\x00\x00\x00", False), (b"\x01", None)],
)
def test_secure_boot_from_the_efi_variable(
    tmp_path: Path, variable: bytes, expected: bool | None
) -> None:
    efivars = tmp_path / "sys/firmware/efi/efivars"
    efivars.mkdir(parents=True)
    (efivars / "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c").write_bytes(variable)
    facts: dict[str, Any] = {}
    collect_system(facts, [], tmp_path, "img-1", "grub")
    assert (facts["system"]["secure_boot"], facts["system"]["boot_path"]) == (expected, "grub")
