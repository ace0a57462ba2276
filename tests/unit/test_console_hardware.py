"""console.hardware: a node's facts as the page lays them out (exact), whatever the node
sent (a wrong type for any key reads as "-", never a 500); and render's when/ago/size."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from livestrap.master.console.hardware import MAX_ROWS, MAX_TEXT, Hardware, Table, hardware
from livestrap.master.console.render import ago, size, when

pytestmark = pytest.mark.unit

FACTS: dict[str, Any] = {
    "system": {"vendor": "Dell Inc.", "product": "PowerEdge R650", "serial": "SN1",
               "uuid": "4c4c4544-0031", "firmware": "uefi", "image_id": "img-1",
               "kernel": "6.1.0-18-amd64", "boot_path": "grub", "secure_boot": True},
    "cpu": {"model": "Xeon Gold 6338", "sockets": 1, "cores": 32, "threads": 64,
            "flags": {"virtualization": "vmx", "avx": True, "aes": True, "sse": False}},
    "memory": {"total": 64 * 2**30, "dimms": [
        {"locator": "A1", "size": 32 * 2**30, "type": "DDR4", "speed": 3200,
         "manufacturer": "Samsung", "serial": "M1"},
        {"locator": "A2", "size": None}]},
    "disks": [{"name": "sda", "size": 960 * 10**9, "model": "MZ7LH960", "serial": "S1",
               "transport": "sata", "rotational": False},
              {"name": "sdb", "size": 4 * 10**12, "rotational": True}],
    "nics": [{"name": "eno1", "mac": "b8:ca:3a:00:00:01", "driver": "ice", "operstate": "up",
              "speed": 25000, "pxe": True,
              "addresses": [{"address": "10.0.0.2", "prefixlen": 24}],
              "lldp": {"chassis_name": "leaf-01", "port_id": "Ethernet1/1"}},
             {"name": "eno2", "mac": "b8:ca:3a:00:00:02", "carrier": False, "speed": -1,
              "lldp": {"chassis_id": "00:1c:73:aa:bb:cc"}},
             {"name": "eno3", "speed": 100, "carrier": True}],
    "pci": [{"address": "0000:3b:00.0", "class": "0x020000", "class_name": "Ethernet controller",
             "vendor": "0x8086", "device": "0x159b", "driver": "ice"}],
}  # fmt: skip

EXPECTED = Hardware(
    system=[("Vendor", "Dell Inc."), ("Product", "PowerEdge R650"), ("Serial", "SN1"),
            ("UUID", "4c4c4544-0031"), ("Firmware", "uefi"), ("Image", "img-1"),
            ("Kernel", "6.1.0-18-amd64"), ("Boot path", "grub"), ("Secure Boot", "on (enforced)")],
    cpu=[("Model", "Xeon Gold 6338: 1 socket, 32 cores, 64 threads"), ("Features", "aes, avx")],
    memory=[("Total", "64.0 GiB (2 DIMMs)")],
    dimms=Table([["A1", "32.0 GiB", "DDR4", "3200", "Samsung", "M1"],
                 ["A2", "-", "-", "-", "-", "-"]]),
    disks=Table([["sda", "894.1 GiB", "MZ7LH960", "S1", "sata", "SSD"],
                 ["sdb", "3725.3 GiB", "-", "-", "-", "HDD"]]),
    nics=Table([["eno1", "b8:ca:3a:00:00:01", "ice", "up", "25 Gb/s", "yes", "10.0.0.2/24",
                 "leaf-01 port Ethernet1/1"],
                ["eno2", "b8:ca:3a:00:00:02", "-", "no carrier", "-", "", "-",
                 "00:1c:73:aa:bb:cc port ?"],
                ["eno3", "-", "-", "up", "100 Mb/s", "", "-", "-"]]),
    pci=Table([["0000:3b:00.0", "Ethernet controller", "0x8086", "0x159b", "ice"]]),
)  # fmt: skip

EMPTY = Hardware(
    system=[(label, "-") for label in
            ("Vendor", "Product", "Serial", "UUID", "Firmware", "Image", "Kernel", "Boot path",
             "Secure Boot")],
    cpu=[("Model", "-"), ("Features", "-")], memory=[("Total", "-")],
    dimms=Table(), disks=Table(), nics=Table(), pci=Table(),
)  # fmt: skip

# Every JSON type but the right one, for every key the renderer reads.
WRONG: tuple[object, ...] = (None, True, False, 5, -1, 2.5, "x", [], [1, "x", None], {}, {"a": 1})


def test_representative_facts_exactly() -> None:
    assert hardware(FACTS) == EXPECTED


def test_no_facts() -> None:
    assert hardware({}) == EMPTY


@pytest.mark.parametrize("facts", WRONG)
def test_facts_that_are_no_object(facts: object) -> None:
    assert hardware(facts) == EMPTY


def paths(value: object, at: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    """The path of every key and list item in `value`."""
    found: list[tuple[str | int, ...]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [(*at, key), *paths(item, (*at, key))]
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += [(*at, i), *paths(item, (*at, i))]
    return found


def replaced(facts: Any, path: tuple[str | int, ...], value: object) -> Any:
    if not path:
        return value
    copy = dict(facts) if isinstance(facts, dict) else list(facts)
    copy[path[0]] = replaced(facts[path[0]], path[1:], value)  # type: ignore[index]
    return copy


@pytest.mark.parametrize("path", paths(FACTS), ids=lambda p: ".".join(map(str, p)))
def test_a_wrong_type_anywhere_never_fails(path: tuple[str | int, ...]) -> None:
    for value in WRONG:
        shown = hardware(replaced(FACTS, path, value))
        cells = [v for _, v in shown.system + shown.cpu + shown.memory]
        for table in (shown.dimms, shown.disks, shown.nics, shown.pci):
            cells += [cell for row in table.rows for cell in row]
        for cell in cells:
            assert isinstance(cell, str) and len(cell) <= MAX_TEXT
            assert "{" not in cell and "[" not in cell, (path, value, cell)  # no repr


def test_the_reported_crash_addresses_not_a_list() -> None:
    for value in (5, True, "10.0.0.1", {"address": "x"}):
        facts = replaced(FACTS, ("nics", 0, "addresses"), value)
        assert hardware(facts).nics.rows[0][6] == "-"


def test_long_text_and_long_lists_are_capped() -> None:
    many = [{"name": f"d{i}"} for i in range(MAX_ROWS["disks"] + 3)]
    shown = hardware({"system": {"vendor": "v" * 1000}, "disks": many})
    assert shown.system[0] == ("Vendor", "v" * (MAX_TEXT - 1) + "…")
    assert len(shown.disks.rows) == MAX_ROWS["disks"] and shown.disks.more == 3


def test_size() -> None:
    assert [size(n) for n in (None, 0, 1023, 1024, 1536, 2**20, 5 * 2**30, 3 * 2**40)] == [
        "-", "0 B", "1023 B", "1.0 KiB", "1.5 KiB", "1.0 MiB", "5.0 GiB", "3072.0 GiB"]  # fmt: skip


def test_when() -> None:
    assert when(None) == "-"
    assert when(0) == "1970-01-01 00:00:00 UTC"
    assert when(1_700_000_000.9) == "2023-11-14 22:13:20 UTC"
    assert when(datetime(2024, 2, 29, 12, 30, 5, tzinfo=UTC)) == "2024-02-29 12:30:05 UTC"


def test_ago() -> None:
    now = 1_700_000_000.0
    cases = {None: "-", now: "0 s ago", now - 59: "59 s ago", now - 60: "1 min ago",
             now - 3599: "59 min ago", now - 3600: "1 h ago", now - 86399: "23 h ago",
             now - 86400: "1 d ago", now - 10 * 86400: "10 d ago", now + 30: "0 s ago"}  # fmt: skip
    assert {at: ago(at, now) for at in cases} == cases
    assert ago(datetime.fromtimestamp(now - 120, UTC), now) == "2 min ago"
