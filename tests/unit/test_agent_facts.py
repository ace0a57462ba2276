"""Pure fact parsers, each on captured-looking text under tests/fixtures/agent/."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.agent.facts import (
    clean_dmi,
    disk_size_bytes,
    disk_transport,
    firmware_type,
    hex_id,
    parse_cpuinfo,
    parse_dmidecode_memory,
    parse_ethtool,
    parse_ip_addr_json,
    parse_lldpcli_keyvalue,
    parse_lspci_vmmnn,
    parse_meminfo,
    parse_vpd_pg80,
    pci_address_in_path,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "agent"
GiB = 1024**3


def text(name: str) -> str:
    return (FIXTURES / "text" / name).read_text()


def tree(name: str, rel: str) -> str:
    return (FIXTURES / name / rel).read_text()


def test_cpuinfo_two_socket_xeon() -> None:
    cpu = parse_cpuinfo(text("cpuinfo-xeon-2s.txt"))
    assert cpu == {
        "model": "Intel(R) Xeon(R) Silver 4112 CPU @ 2.60GHz",
        "sockets": 2,
        "cores": 8,
        "threads": 16,
        "flags": {"virtualization": "vmx", "aes": True, "avx": True, "avx2": True, "avx512": True},
    }


def test_cpuinfo_epyc_svm_without_avx512() -> None:
    cpu = parse_cpuinfo(text("cpuinfo-epyc-1s.txt"))
    assert (cpu["sockets"], cpu["cores"], cpu["threads"]) == (1, 8, 16)
    assert cpu["model"] == "AMD EPYC 7232P 8-Core Processor"
    assert cpu["flags"] == {
        "virtualization": "svm",
        "aes": True,
        "avx": True,
        "avx2": True,
        "avx512": False,
    }


def test_cpuinfo_without_topology_lines() -> None:
    cpu = parse_cpuinfo(text("cpuinfo-arm64.txt"))
    assert (cpu["model"], cpu["sockets"], cpu["cores"], cpu["threads"]) == (None, 1, 4, 4)
    assert cpu["flags"]["aes"] is True
    assert cpu["flags"]["virtualization"] is None
    assert parse_cpuinfo("")["threads"] == 0


def test_cpuinfo_captured_from_this_machine() -> None:
    cpu = parse_cpuinfo(tree("this-machine", "proc/cpuinfo"))
    assert cpu["threads"] >= 1
    assert 1 <= cpu["sockets"] <= cpu["cores"] <= cpu["threads"]


def test_meminfo_in_bytes() -> None:
    info = parse_meminfo(tree("qemu-guest", "proc/meminfo"))
    assert info["MemTotal"] == 4014856 * 1024
    assert info["HugePages_Total"] == 0  # a count, not kB
    assert parse_meminfo(tree("this-machine", "proc/meminfo"))["MemTotal"] > 0
    assert parse_meminfo("garbage\nMemTotal: lots\n") == {}


def test_dmidecode_server_skips_empty_slots() -> None:
    dimms = parse_dmidecode_memory(text("dmidecode-memory-server.txt"))
    assert dimms == [
        {
            "locator": "A1",
            "size": 32 * GiB,
            "type": "DDR4",
            "speed": 2933,
            "manufacturer": "00AD00B300AD",
            "serial": "93E6C2A1",
            "part": "HMA84GR7CJR4N-WM",
        },
        {
            "locator": "B1",
            "size": 32 * GiB,
            "type": "DDR4",
            "speed": 2933,
            "manufacturer": "00CE00B300CE",
            "serial": "40D3E9B7",
            "part": "M393A4K40CB2-CVF",
        },
    ]


def test_dmidecode_legacy_units_and_qemu_placeholders() -> None:
    (dimm,) = parse_dmidecode_memory(text("dmidecode-memory-legacy.txt"))
    assert (dimm["size"], dimm["speed"], dimm["manufacturer"]) == (16 * GiB, 2400, "Kingston")
    (qemu,) = parse_dmidecode_memory(tree("qemu-guest", "_tools/dmidecode_-t_memory"))
    assert qemu == {
        "locator": "DIMM 0",
        "size": 4 * GiB,
        "type": "RAM",
        "speed": None,
        "manufacturer": "QEMU",
        "serial": None,
        "part": None,
    }
    assert parse_dmidecode_memory("# No SMBIOS nor DMI entry point found, sorry.\n") == []


def test_lspci_names_and_ids() -> None:
    devices = parse_lspci_vmmnn(text("lspci-vmmnn-server.txt"))
    assert [d["address"] for d in devices] == [
        "0000:00:00.0",
        "0000:3b:00.0",
        "0000:5e:00.0",
        "0000:d8:00.0",
    ]
    mellanox = devices[2]
    assert mellanox["class_id"] == "0200"
    assert (mellanox["vendor_id"], mellanox["vendor_name"]) == ("15b3", "Mellanox Technologies")
    # the id is the last bracket; earlier brackets belong to the name
    assert (mellanox["device_id"], mellanox["device_name"]) == (
        "1017",
        "MT27800 Family [ConnectX-5]",
    )
    assert devices[1]["rev"] == "02"
    ahci = parse_lspci_vmmnn(tree("qemu-guest", "_tools/lspci_-vmmnn_-D"))[6]
    assert ahci["device_name"] == "82801IR/IO/IH (ICH9R/DO/DH) 6 port SATA Controller [AHCI mode]"
    assert ahci["device_id"] == "2922"


def test_lspci_without_domain_and_garbage() -> None:
    (device,) = parse_lspci_vmmnn("Slot:\t00:1f.2\nClass:\tSATA controller [0106]\n")
    assert device["address"] == "0000:00:1f.2"
    assert device["vendor_id"] is None
    assert parse_lspci_vmmnn("") == []
    with pytest.raises(ValueError, match="lspci"):
        parse_lspci_vmmnn("00:00.0 Host bridge: Intel Corporation 440FX\n")


def test_ethtool_speed_duplex_link() -> None:
    assert parse_ethtool(text("ethtool-25g.txt")) == {
        "speed": 25000,
        "duplex": "full",
        "link": True,
    }
    assert parse_ethtool(text("ethtool-nolink.txt")) == {
        "speed": None,
        "duplex": None,
        "link": False,
    }
    virtio = parse_ethtool(tree("qemu-guest", "_tools/ethtool_enp0s3"))
    assert virtio == {"speed": None, "duplex": None, "link": True}


def test_lldp_neighbours_per_interface() -> None:
    neighbours = parse_lldpcli_keyvalue(text("lldpcli-keyvalue.txt"))
    assert neighbours == {
        "eno1": {
            "chassis_name": "oob-sw-r12",
            "chassis_id": "3c:2c:30:a1:b2:00",
            "port_id": "ethernet1/1/17",
            "port_descr": "r12-u07 idrac-shared",
        },
        # two neighbours on one port: the first one (the switch) is kept
        "ens2f0np0": {
            "chassis_name": "leaf-r12-a.dc1.example.net",
            "chassis_id": "44:4c:a8:11:22:33",
            "port_id": "Ethernet7",
            "port_descr": "r12-u07 ens2f0",
        },
        # a dotted interface name, ids of the "local" subtype
        "bond0.101": {
            "chassis_name": None,
            "chassis_id": "FDO21340XYZ",
            "port_id": "Gi1/0/5",
            "port_descr": None,
        },
    }
    assert parse_lldpcli_keyvalue("") == {}


def test_ip_addr_json() -> None:
    addresses = parse_ip_addr_json(tree("qemu-guest", "_tools/ip_-j_addr_show"))
    assert addresses["enp0s3"][0] == {
        "family": "ipv4",
        "address": "10.0.2.15",
        "prefixlen": 24,
        "scope": "global",
    }
    assert [a["family"] for a in addresses["enp0s3"]] == ["ipv4", "ipv6", "ipv6"]
    assert addresses["enp0s4"] == [
        {"family": "ipv6", "address": "fe80::5054:ff:fe12:3457", "prefixlen": 64, "scope": "link"}
    ]
    this = parse_ip_addr_json(tree("this-machine", "_tools/ip_-j_addr_show"))
    assert "lo" in this
    with pytest.raises(ValueError, match="JSON"):
        parse_ip_addr_json("1: lo: <LOOPBACK,UP> mtu 65536")
    with pytest.raises(ValueError, match="list"):
        parse_ip_addr_json("{}")


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("Dell Inc.\n", "Dell Inc."),
        ("To Be Filled By O.E.M.", None),
        ("Default string", None),
        ("  Not Specified ", None),
        ("03000200-0400-0500-0006-000700080009", None),
        ("", None),
        (None, None),
        ("CZ2D1K0ABC", "CZ2D1K0ABC"),
    ],
)
def test_clean_dmi(raw: str | None, clean: str | None) -> None:
    assert clean_dmi(raw) == clean


def test_small_helpers() -> None:
    assert firmware_type(True) == "uefi"
    assert firmware_type(False) == "bios"
    assert disk_size_bytes("41943040\n") == 20 * GiB
    with pytest.raises(ValueError):
        disk_size_bytes("lots")
    assert hex_id("0x020000\n") == "020000"
    assert hex_id("0x8086") == "8086"
    assert parse_vpd_pg80(b"\x00\x80\x00\x0cS4EWNX0R123 ") == "S4EWNX0R123"
    assert parse_vpd_pg80(b"\x00\x80\x00\x00") is None


@pytest.mark.parametrize(
    ("path", "address"),
    [
        ("/sys/devices/pci0000:00/0000:00:03.0/virtio0", "0000:00:03.0"),
        ("/sys/devices/pci0000:00/0000:00:1c.0/0000:3b:00.1", "0000:3b:00.1"),
        ("/sys/devices/virtual/net/lo", None),
        ("/sys/devices/platform/soc/ff3f0000.ethernet", None),
    ],
)
def test_pci_address_in_path(path: str, address: str | None) -> None:
    assert pci_address_in_path(path) == address


@pytest.mark.parametrize(
    ("path", "transport"),
    [
        ("/sys/devices/pci0000:00/0000:00:1d.0/0000:3d:00.0/nvme/nvme0/nvme0n1", "nvme"),
        ("/sys/devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda", "sata"),
        (
            "/sys/devices/pci0000:00/0000:00:14.0/usb2/2-1/2-1:1.0/host6/target6:0:0/6:0:0:0/block/sdb",
            "usb",
        ),
        (
            "/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/host0/port-0:0/end_device-0:0/"
            "target0:0:0/0:0:0:0/block/sda",
            "sas",
        ),
        (
            "/sys/devices/pci0000:00/0000:00:02.0/0000:02:00.0/host0/target0:2:0/0:2:0:0/block/sda",
            "scsi",
        ),
        (
            "/sys/devices/pci0000:00/0000:00:05.0/virtio3/host2/target2:0:0/2:0:0:0/block/sda",
            "scsi",
        ),
        ("/sys/devices/pci0000:00/0000:00:02.0/virtio1/block/vda", "virtio"),
        ("/sys/devices/platform/soc/fe340000.mmc/mmc_host/mmc0/mmc0:aaaa/block/mmcblk0", "mmc"),
        ("/sys/devices/vbd-51712/block/xvda", "xen"),
        ("/sys/devices/platform/whatever/block/foo", None),
    ],
)
def test_disk_transport(path: str, transport: str | None) -> None:
    assert disk_transport(path) == transport
