"""livestrap.drivers on Debian's real modules.alias lines and a real server's PCI ids:
X520 (ixgbe), E810 (ice, which needs its DDP package), ConnectX-5 (mlx5_core),
BCM57810 (bnx2x, which needs its firmware), NVMe and AHCI, and devices no module drives."""

from __future__ import annotations

import pytest

from driverkit import fixture_coverage, fixture_text
from livestrap.drivers import (
    MAX_ALIAS_TEXT,
    ModuleCoverage,
    PciPattern,
    check_devices,
    gaps,
    parse_modules_alias,
    summarize,
)
from livestrap.lspci import PciDevice, parse_lspci

pytestmark = pytest.mark.unit

ICE_FW = "intel/ice/ddp/ice.pkg"
BNX2X_FW = [f"bnx2x/bnx2x-{chip}-{v}.fw" for v in ("7.13.15.0", "7.13.21.0")
            for chip in ("e2", "e1h", "e1")]  # fmt: skip


def modules() -> dict[str, list[PciPattern]]:
    return parse_modules_alias(fixture_text("modules.alias"))


def test_parses_the_real_lines() -> None:
    found = modules()
    assert list(found) == ["ixgbe", "ice", "mlx5_core", "bnx2x", "nvme", "ahci", "rp2"]
    assert len(found["ixgbe"]) == 47 and len(found["ahci"]) == 313
    assert PciPattern((0x8086, 0x10FB, None, None, None, None, None)) in found["ixgbe"]
    # nvme claims every NVMe controller by class: 01 08 02
    assert PciPattern((None, None, None, None, 0x01, 0x08, 0x02)) in found["nvme"]
    # mlx5_core's auxiliary: aliases are no PCI patterns
    assert all(p.fields[0] == 0x15B3 for p in found["mlx5_core"])


def test_compact_round_trip() -> None:
    for patterns in modules().values():
        for pattern in patterns:
            assert PciPattern.from_compact(pattern.compact()) == pattern
    ahci_class = PciPattern((None, None, None, None, 0x01, 0x06, 0x01))
    assert ahci_class.compact() == "*:*:*:*:01:06:01"
    assert PciPattern((0x8086, 0x10FB, None, None, None, None, None)).compact() == "8086:10fb"
    assert (
        PciPattern((0x1657, 0x14, None, None, 0x0C, 0x04, 0)).compact() == "1657:0014:*:*:0c:04:00"
    )


@pytest.mark.parametrize(
    "text",
    ["", "8086", "8086:10fb:*:*:02:00:00:00", "8086:10FB", "80860:10fb", "8086:-1", "x:y"],
)
def test_compact_refuses(text: str) -> None:
    if text == "8086":  # one field is a vendor-only pattern
        assert PciPattern.from_compact(text).fields[0] == 0x8086
        return
    with pytest.raises(ValueError, match="not a PCI pattern"):
        PciPattern.from_compact(text)


def test_refuses_a_bad_pci_alias_line() -> None:
    with pytest.raises(ValueError, match="not a PCI alias line"):
        parse_modules_alias("alias pci:v00008086d*sv*sd*bc*sc*i*; rm -rf / ixgbe\n")
    with pytest.raises(ValueError, match="larger than"):
        parse_modules_alias("#" * (MAX_ALIAS_TEXT + 1))
    assert parse_modules_alias("alias usb:v0BDAp8153d*dc*dsc*dp*ic*isc*ip*in* r8152\n") == {}


def server() -> list[PciDevice]:
    return parse_lspci(fixture_text("server.lspci-n"))


def by_slot(checks: list) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return {c.device.slot: (c.status, c.modules, c.missing_firmware) for c in checks}


def test_check_without_firmware() -> None:
    checks = check_devices(server(), fixture_coverage().module_coverage())
    found = by_slot(checks)
    assert found["18:00.0"] == ("ok", ("ixgbe",), ())  # X520: no firmware needed
    assert found["3b:00.0"] == ("no-firmware", ("ice",), (ICE_FW,))  # E810-C QSFP
    assert found["3b:00.1"] == ("no-firmware", ("ice",), (ICE_FW,))  # E810-C SFP
    assert found["5e:00.0"] == ("ok", ("mlx5_core",), ())  # ConnectX-5
    assert found["5e:00.1"] == ("ok", ("mlx5_core",), ())  # ConnectX-5 Ex
    assert found["86:00.0"] == ("no-firmware", ("bnx2x",), tuple(sorted(BNX2X_FW)))
    assert found["af:00.0"] == ("ok", ("nvme",), ())  # by class 0108 (prog-if unknown)
    assert found["00:17.0"] == ("ok", ("ahci",), ())  # by its id, and class 0106
    assert found["03:00.0"] == ("no-driver", (), ())  # Matrox BMC VGA: gpu tree dropped
    assert found["00:08.0"] == ("no-driver", (), ())  # Ubox registers: no driver at all
    # NICs first (by slot), then storage, then the rest in class order
    assert [c.device.slot for c in checks][:8] == [
        "18:00.0", "18:00.1", "3b:00.0", "3b:00.1", "5e:00.0", "5e:00.1", "86:00.0",
        "00:11.5",
    ]  # fmt: skip
    assert [c.device.slot for c in checks][-1] == "00:08.0"


def test_firmware_present_makes_them_ok() -> None:
    coverage = fixture_coverage(present={ICE_FW, *BNX2X_FW}).module_coverage()
    found = by_slot(check_devices(server(), coverage))
    assert found["3b:00.0"][0] == found["86:00.0"][0] == "ok"
    # half of bnx2x's files is still "no firmware": modinfo names them all
    partial = fixture_coverage(present={ICE_FW, *BNX2X_FW[3:]}).module_coverage()
    status, _, missing = by_slot(check_devices(server(), partial))["86:00.0"]
    assert status == "no-firmware" and missing == tuple(sorted(BNX2X_FW[:3]))


def test_gaps_and_importance() -> None:
    checks = check_devices(server(), fixture_coverage().module_coverage())
    missing = gaps(checks)
    assert [(c.device.slot, c.important) for c in missing] == [
        ("3b:00.0", True), ("3b:00.1", True), ("86:00.0", True),
        ("03:00.0", False), ("00:00.0", False), ("00:1c.0", False), ("00:08.0", False),
    ]  # fmt: skip


def test_unknown_fields_match_any_pattern_known_ones_exactly() -> None:
    nvme = [ModuleCoverage("nvme", (PciPattern((None, None, None, None, 1, 8, 2)),))]
    known = PciDevice("01:00.0", 0x1234, 0x5678, 0x01, 0x08, 0x02)
    unknown = PciDevice("01:00.0", 0x1234, 0x5678, 0x01, 0x08, None)
    other_if = PciDevice("01:00.0", 0x1234, 0x5678, 0x01, 0x08, 0x03)
    assert [c.status for c in check_devices([known, unknown, other_if], nvme)] == [
        "ok", "ok", "no-driver",
    ]  # fmt: skip
    sub = [ModuleCoverage("m", (PciPattern((0x8086, 0x1, 0x8086, 0x2, None, None, None)),))]
    assert check_devices([PciDevice("a", 0x8086, 1, 2, 0, None, 0x8086, 3)], sub)[0].status == (
        "no-driver"
    )


def test_one_module_with_firmware_is_enough() -> None:
    pattern = (PciPattern((0x1077, 0x8070, None, None, None, None, None)),)
    both = [ModuleCoverage("qede", pattern, ("qed/a.bin",)), ModuleCoverage("qedf", pattern)]
    dev = PciDevice("04:00.0", 0x1077, 0x8070, 0x02, 0x00)
    assert check_devices([dev], both)[0].status == "ok"
    assert check_devices([dev], both[:1])[0].missing_firmware == ("qed/a.bin",)


def test_summary_by_class() -> None:
    record = fixture_coverage()
    rows = summarize(record.module_coverage(), record.module_classes())
    assert [(r.base_class, r.name, r.modules, r.incomplete_firmware) for r in rows] == [
        (0x02, "network controller", 4, 2),
        (0x01, "storage controller", 2, 0),
        (None, "by vendor and device only", 1, 1),  # rp2: a serial card, class unknown
    ]
    network = rows[0]
    assert network.patterns == 47 + 26 + 25 + 24  # mlx5_core: 2 of its 27 are auxiliary:
    assert network.vendors == 4  # Intel, Mellanox, Broadcom, and QLogic (bnx2x)
