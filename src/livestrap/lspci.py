"""PCI devices from `lspci` text or an agent's PCI facts, and PCI class names: pure, stdlib.

The text comes from an operator's file or a node, so it is read as hostile: bounded in
size and lines, every field checked against its exact form, a line that is not one of
the known forms refused with its number (never guessed at).

Forms read (with or without a leading domain, `-D`):
- `lspci -n`:    `00:19.0 0200: 8086:1502 (rev 04)`
- `lspci -nn`:   `00:19.0 Ethernet controller [0200]: Intel Corporation ... [8086:1502] (rev 04)`
- `lspci -mm -n`: `00:19.0 "0200" "8086" "1502" -r04 "17aa" "21f3"` (subsystem too)
- `lspci -vmm -n[n]`: `Slot:` / `Class:` / `Vendor:` / ... records, blank-line separated
- `lspci -n -v[v]`: the terse line, then indented detail lines (only `Subsystem:` read)
`lspci -n` does not show the subsystem ids or the programming interface; a field a form
does not give stays None (drivers.py then lets any pattern match it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

MAX_TEXT = 1 << 20  # a real `lspci -vvv` of a large server is well under 200 KiB
MAX_DEVICES = 1024
_SLOT = r"(?:[0-9a-fA-F]{4,8}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]"
_HEX4 = r"[0-9a-fA-F]{4}"
_TERSE = re.compile(
    rf"^(?P<slot>{_SLOT}) (?:[^\[\]]*\[)?(?P<cls>{_HEX4})\]?: "
    rf"(?:.*\[)?(?P<vendor>{_HEX4}):(?P<device>{_HEX4})\]?"
    r"(?: \(rev (?P<rev>[0-9a-fA-F]{2})\))?(?: \(prog-if (?P<progif>[0-9a-fA-F]{2})[^)]*\))?\s*\Z"
)
_QUOTED = r'"(?:[^"]*\[)?(' + _HEX4 + r')\]?"'
_MM = re.compile(
    rf"^(?P<slot>{_SLOT}) {_QUOTED} {_QUOTED} {_QUOTED}"
    r"(?: -r[0-9a-fA-F]{2})?(?: -p(?P<progif>[0-9a-fA-F]{2}))?"
    rf'(?: (?:{_QUOTED}|"") (?:{_QUOTED}|""))?\s*\Z'
)
_SUBSYSTEM = re.compile(rf"^\s+Subsystem: (?:.*\[)?({_HEX4}):({_HEX4})\]?\s*\Z")
_VMM_FIELD = re.compile(r"^(?P<key>[A-Za-z]+):\s+(?P<value>.*?)\s*\Z")
_VMM_HEX = re.compile(rf"^(?:.*\[)?(?P<hex>{_HEX4}|[0-9a-fA-F]{{2}})\]?\Z")

# PCI base classes (the PCI Code and ID Assignment Specification), the first byte of the
# class code; storage and network matter most to a discovery image, so they come first
CLASS_NAMES: dict[int, str] = {
    0x02: "network controller",
    0x01: "storage controller",
    0x00: "unclassified device",
    0x03: "display controller",
    0x04: "multimedia controller",
    0x05: "memory controller",
    0x06: "bridge",
    0x07: "communication controller",
    0x08: "system peripheral",
    0x09: "input device controller",
    0x0A: "docking station",
    0x0B: "processor",
    0x0C: "serial bus controller",
    0x0D: "wireless controller",
    0x0E: "intelligent controller",
    0x0F: "satellite communication controller",
    0x10: "encryption controller",
    0x11: "signal processing controller",
    0x12: "processing accelerator",
    0x13: "non-essential instrumentation",
    0x40: "coprocessor",
    0xFF: "unassigned class",
}
IMPORTANT_CLASSES = (0x02, 0x01)  # NICs, then disk controllers


def class_name(base: int | None) -> str:
    if base is None:
        return "unknown class"
    return CLASS_NAMES.get(base, f"class {base:02x}")


def class_rank(base: int | None) -> int:
    """Sort key of a base class: network, storage, then the rest in class order."""
    if base in IMPORTANT_CLASSES:
        return IMPORTANT_CLASSES.index(base)
    return len(IMPORTANT_CLASSES) + (0x100 if base is None else base)


@dataclass(frozen=True)
class PciDevice:
    """One PCI function; None: a field its source did not give."""

    slot: str
    vendor: int
    device: int
    base_class: int | None
    sub_class: int | None
    prog_if: int | None = None
    subvendor: int | None = None
    subdevice: int | None = None

    @property
    def ids(self) -> str:
        return f"{self.vendor:04x}:{self.device:04x}"

    @property
    def class_code(self) -> str | None:
        if self.base_class is None or self.sub_class is None:
            return None
        return f"{self.base_class:02x}{self.sub_class:02x}"


class LspciError(ValueError):
    """Text that is not lspci output of a known form."""


def parse_lspci(text: str) -> list[PciDevice]:
    """The devices of `lspci` text in any form above; raises LspciError naming a bad line."""
    if len(text) > MAX_TEXT:
        raise LspciError(f"lspci text is larger than {MAX_TEXT} bytes")
    lines = text.splitlines()
    if any(_VMM_FIELD.match(line) and line.startswith("Slot:") for line in lines):
        devices = _parse_vmm(lines)
    else:
        devices = _parse_lines(lines)
    if len(devices) > MAX_DEVICES:
        raise LspciError(f"more than {MAX_DEVICES} PCI devices")
    return devices


def _parse_lines(lines: list[str]) -> list[PciDevice]:
    devices: list[PciDevice] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if line[0] in " \t":  # a detail line of `lspci -v`
            sub = _SUBSYSTEM.match(line)
            if sub and devices:
                devices[-1] = _with_subsystem(devices[-1], sub.group(1), sub.group(2))
            continue
        if m := _MM.match(line):
            cls, vendor, device, subvendor, subdevice = (m.group(i) for i in (2, 3, 4, 6, 7))
            devices.append(
                PciDevice(
                    slot=m["slot"].lower(),
                    vendor=int(vendor, 16),
                    device=int(device, 16),
                    base_class=int(cls[:2], 16),
                    sub_class=int(cls[2:], 16),
                    prog_if=_int(m["progif"]),
                    subvendor=_int(subvendor),
                    subdevice=_int(subdevice),
                )
            )
        elif m := _TERSE.match(line):
            devices.append(
                PciDevice(
                    slot=m["slot"].lower(),
                    vendor=int(m["vendor"], 16),
                    device=int(m["device"], 16),
                    base_class=int(m["cls"][:2], 16),
                    sub_class=int(m["cls"][2:], 16),
                    prog_if=_int(m["progif"]),
                )
            )
        else:
            raise LspciError(f"line {number} is not lspci output: {line[:80]!r}")
        if len(devices) > MAX_DEVICES:
            raise LspciError(f"more than {MAX_DEVICES} PCI devices")
    return devices


def _with_subsystem(dev: PciDevice, vendor: str, device: str) -> PciDevice:
    return PciDevice(
        dev.slot, dev.vendor, dev.device, dev.base_class, dev.sub_class, dev.prog_if,
        int(vendor, 16), int(device, 16),
    )  # fmt: skip


def _int(text: str | None) -> int | None:
    return None if text is None else int(text, 16)


def _parse_vmm(lines: list[str]) -> list[PciDevice]:
    records: list[dict[str, str]] = [{}]
    for number, line in enumerate(lines, 1):
        if not line.strip():
            if records[-1]:
                records.append({})
            continue
        m = _VMM_FIELD.match(line)
        if m is None:
            raise LspciError(f"line {number} is not lspci -vmm output: {line[:80]!r}")
        records[-1].setdefault(m["key"], m["value"])
        if len(records) > MAX_DEVICES + 1:
            raise LspciError(f"more than {MAX_DEVICES} PCI devices")
    return [_vmm_device(r) for r in records if r]


def _vmm_device(record: dict[str, str]) -> PciDevice:
    def field(key: str, digits: int, required: bool = True) -> int | None:
        value = record.get(key)
        if value is None:
            if required:
                raise LspciError(f"lspci -vmm record without {key}: {record.get('Slot')!r}")
            return None
        m = _VMM_HEX.match(value)
        if m is None or len(m["hex"]) != digits:
            raise LspciError(f"lspci -vmm {key} is not {digits} hex digits: {value[:40]!r}")
        return int(m["hex"], 16)

    slot = record.get("Slot", "")
    if not re.fullmatch(_SLOT, slot):
        raise LspciError(f"lspci -vmm record with a bad Slot: {slot[:40]!r}")
    cls = field("Class", 4)
    assert cls is not None
    return PciDevice(
        slot=slot.lower(),
        vendor=field("Vendor", 4) or 0,
        device=field("Device", 4) or 0,
        base_class=cls >> 8,
        sub_class=cls & 0xFF,
        prog_if=field("ProgIf", 2, False),
        subvendor=field("SVendor", 4, False),
        subdevice=field("SDevice", 4, False),
    )


_FACT_HEX = re.compile(r"^(?:0x)?[0-9a-f]{1,6}\Z")


def devices_from_facts(pci: Any) -> list[PciDevice]:
    """The devices of a node's `facts.pci` (agent.collect.collect_pci: sysfs ids as bare
    hex, `class` six digits); entries that do not have that form are skipped."""
    devices: list[PciDevice] = []
    if not isinstance(pci, list):
        return devices
    for entry in pci[:MAX_DEVICES]:
        if not isinstance(entry, dict):
            continue
        vendor, device = _fact(entry, "vendor", 4), _fact(entry, "device", 4)
        cls = _fact(entry, "class", 6)
        address = entry.get("address")
        if vendor is None or device is None or not isinstance(address, str):
            continue
        if not re.fullmatch(_SLOT, address):
            continue
        devices.append(
            PciDevice(
                slot=address.lower(),
                vendor=vendor,
                device=device,
                base_class=None if cls is None else cls >> 16,
                sub_class=None if cls is None else (cls >> 8) & 0xFF,
                prog_if=None if cls is None else cls & 0xFF,
                subvendor=_fact(entry, "subsystem_vendor", 4),
                subdevice=_fact(entry, "subsystem_device", 4),
            )
        )
    return devices


def _fact(entry: dict[str, Any], key: str, digits: int) -> int | None:
    value = entry.get(key)
    if not isinstance(value, str) or not _FACT_HEX.match(value.lower()):
        return None
    number = int(value, 16)
    return number if number < 16**digits else None
