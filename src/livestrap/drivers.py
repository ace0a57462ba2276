"""Which PCI devices an image can drive: its modules' PCI aliases and firmware, and the
check of a machine's devices against them. Pure, stdlib.

A kernel module claims devices by alias patterns (`modules.alias`, made by depmod from
each module's MODULE_DEVICE_TABLE): `pci:v00008086d000010FBsv*sd*bc*sc*i*`, one field
per PCI id, each the exact value or `*`. The image records them compactly (`PciPattern
.compact`: `8086:10fb`, or `*:*:*:*:01:08:02` for a class match) with, per module, the
firmware files `modinfo -F firmware` names that the image lacks, so the check needs
neither the root filesystem nor a kernel.

A device field its source does not give (`lspci -n` has no subsystem ids and no
programming interface) matches any pattern: the check then says what the image may
drive; `lspci -nvmm` (or a node's facts) gives every field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from livestrap.lspci import PciDevice, class_name, class_rank

MAX_ALIAS_TEXT = 16 << 20  # a whole distribution kernel's modules.alias is ~1.3 MB
_ALIAS = re.compile(
    r"^alias pci:v(\*|[0-9A-F]{8})d(\*|[0-9A-F]{8})sv(\*|[0-9A-F]{8})sd(\*|[0-9A-F]{8})"
    r"bc(\*|[0-9A-F]{2})sc(\*|[0-9A-F]{2})i(\*|[0-9A-F]{2}\*) ([A-Za-z0-9_-]{1,64})\Z"
)
_COMPACT_FIELD = (r"[0-9a-f]{4}", r"[0-9a-f]{4}", r"[0-9a-f]{4}", r"[0-9a-f]{4}",
                  r"[0-9a-f]{2}", r"[0-9a-f]{2}", r"[0-9a-f]{2}")  # fmt: skip
_WIDTHS = (4, 4, 4, 4, 2, 2, 2)


@dataclass(frozen=True)
class PciPattern:
    """One alias: vendor, device, subvendor, subdevice, base class, subclass, prog-if;
    None matches anything."""

    fields: tuple[int | None, ...]

    def compact(self) -> str:
        """`v:d:sv:sd:bc:sc:i` in lowercase hex, `*` for any, trailing `:*` left out."""
        parts = [
            "*" if f is None else f"{f:0{w}x}" for f, w in zip(self.fields, _WIDTHS, strict=True)
        ]
        while len(parts) > 1 and parts[-1] == "*":
            parts.pop()
        return ":".join(parts)

    @classmethod
    def from_compact(cls, text: str) -> PciPattern:
        parts = text.split(":")
        if not 1 <= len(parts) <= 7:
            raise ValueError(f"not a PCI pattern: {text[:40]!r}")
        fields: list[int | None] = []
        for part, form in zip(parts, _COMPACT_FIELD, strict=False):  # parts: 1 to 7
            if part == "*":
                fields.append(None)
            elif re.fullmatch(form, part):
                fields.append(int(part, 16))
            else:
                raise ValueError(f"not a PCI pattern: {text[:40]!r}")
        fields += [None] * (7 - len(fields))
        return cls(tuple(fields))

    def matches(self, dev: PciDevice) -> bool:
        values = (dev.vendor, dev.device, dev.subvendor, dev.subdevice,
                  dev.base_class, dev.sub_class, dev.prog_if)  # fmt: skip
        return all(
            p is None or v is None or p == v for p, v in zip(self.fields, values, strict=True)
        )


def _alias_field(text: str, width: int) -> int | None:
    if text.startswith("*"):
        return None
    value = int(text[:width], 16)
    # vendor/device 0000FFFF is PCI_ANY_ID's low half in a few tables; the kernel's
    # 8-digit fields never exceed 16 bits for a real id
    return value if value <= 0xFFFF else None


def parse_modules_alias(text: str) -> dict[str, list[PciPattern]]:
    """Module name -> its PCI alias patterns, in file order; other aliases are skipped."""
    if len(text) > MAX_ALIAS_TEXT:
        raise ValueError(f"modules.alias is larger than {MAX_ALIAS_TEXT} bytes")
    modules: dict[str, list[PciPattern]] = {}
    for line in text.splitlines():
        if not line.startswith("alias pci:"):
            continue
        m = _ALIAS.match(line)
        if m is None:
            raise ValueError(f"not a PCI alias line: {line[:100]!r}")
        fields = (
            _alias_field(m.group(1), 8), _alias_field(m.group(2), 8),
            _alias_field(m.group(3), 8), _alias_field(m.group(4), 8),
            _alias_field(m.group(5), 2), _alias_field(m.group(6), 2),
            _alias_field(m.group(7), 2),
        )  # fmt: skip
        name = m.group(8).replace("-", "_")
        patterns = modules.setdefault(name, [])
        pattern = PciPattern(fields)
        if pattern not in patterns:
            patterns.append(pattern)
    return modules


@dataclass(frozen=True)
class ModuleCoverage:
    """One module as the image records it: its patterns and the firmware it lacks."""

    name: str
    patterns: tuple[PciPattern, ...]
    missing_firmware: tuple[str, ...] = ()

    @property
    def firmware_complete(self) -> bool:
        return not self.missing_firmware


@dataclass(frozen=True)
class DeviceCheck:
    """What the image offers one device: `ok`, `no-driver` or `no-firmware`."""

    device: PciDevice
    status: str
    modules: tuple[str, ...]  # every module whose patterns match
    missing_firmware: tuple[str, ...]  # of those modules, when none has all its firmware

    @property
    def important(self) -> bool:
        """A NIC or a storage controller: without it the node never reports."""
        return class_rank(self.device.base_class) < 2


def check_devices(
    devices: Iterable[PciDevice], coverage: Iterable[ModuleCoverage]
) -> list[DeviceCheck]:
    """Every device with its status, NICs first, then storage, then by class and slot.
    A device is `ok` when one matching module has all its firmware."""
    by_vendor: dict[int | None, list[tuple[int, PciPattern]]] = {}
    modules = list(coverage)
    for i, module in enumerate(modules):
        for pattern in module.patterns:
            by_vendor.setdefault(pattern.fields[0], []).append((i, pattern))
    checks = []
    for dev in devices:
        candidates = (*by_vendor.get(dev.vendor, ()), *by_vendor.get(None, ()))
        hits = sorted({i for i, p in candidates if p.matches(dev)})
        matching = [modules[i] for i in hits]
        if not matching:
            status, missing = "no-driver", ()
        elif any(m.firmware_complete for m in matching):
            status, missing = "ok", ()
        else:
            status = "no-firmware"
            missing = tuple(sorted({f for m in matching for f in m.missing_firmware}))
        checks.append(DeviceCheck(dev, status, tuple(m.name for m in matching), missing))
    return sorted(checks, key=_order)


def _order(check: DeviceCheck) -> tuple[int, int, str]:
    dev = check.device
    return (class_rank(dev.base_class), dev.sub_class or 0, dev.slot)


def gaps(checks: Iterable[DeviceCheck]) -> list[DeviceCheck]:
    """The devices the image cannot drive, or drives without their firmware."""
    return [c for c in checks if c.status != "ok"]


@dataclass(frozen=True)
class ClassSummary:
    """One row of what an image can drive: a base class, by module count and vendors."""

    base_class: int | None
    name: str
    modules: int
    patterns: int
    vendors: int  # distinct vendor ids named
    incomplete_firmware: int  # modules of this class that lack firmware


def pattern_class(pattern: PciPattern, known: Mapping[int, int]) -> int | None:
    """The base class a pattern claims: its own field, else the class the vendor:device
    pair is known to have (`known`: vendor<<16|device -> base class), else None."""
    base = pattern.fields[4]
    if base is not None:
        return base
    vendor, device = pattern.fields[0], pattern.fields[1]
    if vendor is None or device is None:
        return None
    return known.get(vendor << 16 | device)


def summarize(
    coverage: Iterable[ModuleCoverage], module_classes: Mapping[str, int | None]
) -> list[ClassSummary]:
    """Per base class (a module's class: `module_classes`, e.g. from its tree), how many
    modules and patterns and vendors the image has, NICs and storage first."""
    rows: dict[int | None, list[ModuleCoverage]] = {}
    for module in coverage:
        base = module_classes.get(module.name)
        if base is None:
            bases = {p.fields[4] for p in module.patterns if p.fields[4] is not None}
            base = bases.pop() if len(bases) == 1 else None
        rows.setdefault(base, []).append(module)
    summary = [
        ClassSummary(
            base,
            class_name(base) if base is not None else "by vendor and device only",
            len(mods),
            sum(len(m.patterns) for m in mods),
            len({p.fields[0] for m in mods for p in m.patterns if p.fields[0] is not None}),
            sum(1 for m in mods if not m.firmware_complete),
        )
        for base, mods in rows.items()
    ]
    return sorted(summary, key=lambda r: class_rank(r.base_class))
