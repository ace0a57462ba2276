"""livestrap.lspci: every form lspci prints, a node's facts, and hostile text."""

from __future__ import annotations

import pytest

from driverkit import fixture_text
from livestrap.lspci import (
    MAX_DEVICES,
    MAX_TEXT,
    LspciError,
    PciDevice,
    class_name,
    class_rank,
    devices_from_facts,
    parse_lspci,
)

pytestmark = pytest.mark.unit

X520 = PciDevice("18:00.0", 0x8086, 0x10FB, 0x02, 0x00)


def test_terse_n() -> None:
    devices = parse_lspci(fixture_text("server.lspci-n"))
    assert len(devices) == 14
    assert devices[6] == X520
    assert devices[-1] == PciDevice("af:00.0", 0x144D, 0xA808, 0x01, 0x08)
    assert devices[-1].ids == "144d:a808" and devices[-1].class_code == "0108"


def test_nn_with_names_and_domain() -> None:
    n = parse_lspci(fixture_text("server.lspci-n"))
    nn = parse_lspci(fixture_text("server.lspci-nn"))
    # the same machine: the same ids, the slots with their domain
    assert [(d.vendor, d.device, d.base_class, d.sub_class) for d in nn] == [
        (d.vendor, d.device, d.base_class, d.sub_class) for d in n
    ]
    assert nn[0].slot == "0000:00:00.0"
    # "[AHCI mode]" and "[ConnectX-5]" in names are not taken for ids
    assert nn[3].ids == "8086:a182" and nn[10].ids == "15b3:1017"


def test_mm_n_gives_subsystem_and_prog_if() -> None:
    devices = parse_lspci(fixture_text("server.lspci-mm-n"))
    assert len(devices) == 14
    assert devices[6] == PciDevice("18:00.0", 0x8086, 0x10FB, 0x02, 0x00, None, 0x8086, 0x000C)
    assert devices[3].prog_if == 0x01  # -p01
    assert devices[4].subvendor is None  # "" "": no subsystem
    assert devices[-1].prog_if == 0x02 and devices[-1].subdevice == 0xA801


def test_vmm_records() -> None:
    devices = parse_lspci(fixture_text("server.lspci-nvmm"))
    assert devices == [
        PciDevice("0000:00:17.0", 0x8086, 0xA182, 0x01, 0x06, 0x01, 0x1028, 0x0716),
        PciDevice("0000:3b:00.0", 0x8086, 0x1592, 0x02, 0x00, None, 0x8086, 0x0002),
        PciDevice("0000:86:00.0", 0x14E4, 0x168E, 0x02, 0x00, None, 0x14E4, 0x1006),
        PciDevice("0000:af:00.0", 0x144D, 0xA808, 0x01, 0x08, 0x02, 0x144D, 0xA801),
    ]


def test_verbose_reads_subsystem_and_prog_if() -> None:
    devices = parse_lspci(fixture_text("server.lspci-nv"))
    assert devices == [
        PciDevice("18:00.0", 0x8086, 0x10FB, 0x02, 0x00, None, 0x8086, 0x000C),
        PciDevice("af:00.0", 0x144D, 0xA808, 0x01, 0x08, 0x02, 0x144D, 0xA801),
    ]


def test_empty_text_no_devices() -> None:
    assert parse_lspci("") == [] and parse_lspci("\n\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "hello world",
        "00:19.0 0200 8086:1502",  # no colon after the class
        "00:19.0 0200: 8086:150",  # three-digit device
        "00:19.8 0200: 8086:1502",  # function 8
        "zz:19.0 0200: 8086:1502",
        "00:19.0 0200: 8086:1502 (rev 04)\x1b[31m",
        "<script>alert(1)</script>",
    ],
)
def test_refuses_what_is_not_lspci(text: str) -> None:
    with pytest.raises(LspciError, match="line 1"):
        parse_lspci(text)


def test_refusal_names_the_line_bounded() -> None:
    with pytest.raises(LspciError) as err:
        parse_lspci("00:19.0 0200: 8086:1502\n" + "x" * 5000)
    assert "line 2" in str(err.value) and len(str(err.value)) < 200


def test_bounds() -> None:
    with pytest.raises(LspciError, match="larger than"):
        parse_lspci("x" * (MAX_TEXT + 1))
    many = "".join(f"{b:02x}:{d:02x}.0 0200: 8086:10fb\n" for b in range(64) for d in range(32))
    assert len(many.splitlines()) > MAX_DEVICES
    with pytest.raises(LspciError, match="more than"):
        parse_lspci(many)


def test_vmm_record_without_class_refused() -> None:
    with pytest.raises(LspciError, match="without Class"):
        parse_lspci("Slot:\t00:01.0\nVendor:\t8086\nDevice:\t10fb\n")
    with pytest.raises(LspciError, match="hex digits"):
        parse_lspci("Slot:\t00:01.0\nClass:\t02000\nVendor:\t8086\nDevice:\t10fb\n")


def test_devices_from_agent_facts() -> None:
    facts = [
        {"address": "0000:18:00.0", "class": "020000", "vendor": "8086", "device": "10fb",
         "subsystem_vendor": "8086", "subsystem_device": "000c", "driver": "ixgbe"},
        {"address": "0000:af:00.0", "class": "010802", "vendor": "144d", "device": "a808"},
        {"address": "0000:00:01.0", "class": None, "vendor": "1af4", "device": "1000"},
        {"address": "../../etc", "class": "020000", "vendor": "8086", "device": "10fb"},
        {"address": "0000:00:02.0", "vendor": "18086", "device": "10fb"},  # too wide
        {"address": "0000:00:03.0", "vendor": 32902, "device": "10fb"},  # not text
        "not a dict",
    ]  # fmt: skip
    assert devices_from_facts(facts) == [
        PciDevice("0000:18:00.0", 0x8086, 0x10FB, 0x02, 0x00, 0x00, 0x8086, 0x000C),
        PciDevice("0000:af:00.0", 0x144D, 0xA808, 0x01, 0x08, 0x02),
        PciDevice("0000:00:01.0", 0x1AF4, 0x1000, None, None),
    ]
    assert devices_from_facts(None) == [] and devices_from_facts({"a": 1}) == []


def test_class_names_and_order() -> None:
    assert class_name(0x02) == "network controller"
    assert class_name(0x01) == "storage controller"
    assert class_name(0x77) == "class 77" and class_name(None) == "unknown class"
    ranked = sorted([0x06, None, 0x01, 0x00, 0x02, 0x0C], key=class_rank)
    assert ranked == [0x02, 0x01, 0x00, 0x06, 0x0C, None]
