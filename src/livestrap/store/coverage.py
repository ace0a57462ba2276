"""The PCI coverage an image records in metadata.yaml (`driver_coverage`): per kernel
module with PCI aliases, its patterns (drivers.PciPattern.compact, space separated, to
stay small), the PCI base class of its tree, and the firmware files it names that the
image lacks. Read from bundles too: every field bounded and checked.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    StringConstraints,
    field_validator,
    model_serializer,
    model_validator,
)

from livestrap.drivers import ModuleCoverage, PciPattern

MAX_MODULES = 8192
MAX_PATTERNS = 4096  # one module's; the largest (ata_piix, e1000e) have ~100
MAX_FIRMWARE = 1024
_ID, _BYTE = r"(?:\*|[0-9a-f]{4})", r"(?:\*|[0-9a-f]{2})"
_TOKEN = (
    rf"(?:[0-9a-f]{{4}}:[0-9a-f]{{4}}(?:,[0-9a-f]{{4}})+"  # a vendor's devices, grouped
    rf"|{_ID}(?::{_ID}){{0,3}}|{_ID}(?::{_ID}){{3}}(?::{_BYTE}){{1,3}})"  # one pattern
)
_PCI_FIELD = re.compile(rf"{_TOKEN}(?: {_TOKEN})*")
ModuleName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_]{1,64}$")]
FirmwareName = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.+@,=~*-][A-Za-z0-9_./+@,=~*-]{0,254}$")
]


class ModuleRecord(BaseModel):
    """One module: `pci` its patterns, `firmware_complete` whether every firmware file
    `modinfo -F firmware` names is in the image (`missing_firmware`: the ones it is not)."""

    model_config = ConfigDict(extra="forbid")

    pci: str = Field(max_length=MAX_PATTERNS * 24)
    base_class: int | None = Field(default=None, ge=0, le=0xFF)
    firmware_complete: bool = True
    missing_firmware: list[FirmwareName] = Field(default_factory=list, max_length=MAX_FIRMWARE)

    @field_validator("pci")
    @classmethod
    def _patterns(cls, value: str) -> str:
        """By one regex (decoding 5,000 patterns would cost more than the YAML does)."""
        if not _PCI_FIELD.fullmatch(value):
            raise ValueError(f"not space-separated PCI patterns: {value[:60]!r}")
        if value.count(" ") + value.count(",") + 1 > MAX_PATTERNS:
            raise ValueError(f"more than {MAX_PATTERNS} PCI patterns")
        return value

    @field_validator("missing_firmware")
    @classmethod
    def _no_dotdot(cls, value: list[str]) -> list[str]:
        if any(".." in name.split("/") for name in value):
            raise ValueError("a firmware name with a `..` component")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModuleRecord:
        if self.firmware_complete == bool(self.missing_firmware):
            raise ValueError("firmware_complete must be true exactly when none is missing")
        return self

    @model_serializer(mode="wrap")
    def _small(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Fields at their default left out: most modules are `pci` and `base_class` only."""
        data: dict[str, object] = handler(self)
        defaults: dict[str, object] = {
            "base_class": None,
            "firmware_complete": True,
            "missing_firmware": [],
        }
        return {k: v for k, v in data.items() if k not in defaults or v != defaults[k]}


class DriverCoverage(BaseModel):
    """metadata.yaml's `driver_coverage`: what `images drivers` reads."""

    model_config = ConfigDict(extra="forbid")

    modules: dict[ModuleName, ModuleRecord] = Field(max_length=MAX_MODULES)

    def module_coverage(self) -> list[ModuleCoverage]:
        return [
            ModuleCoverage(
                name,
                tuple(decode_patterns(record.pci)),
                tuple(record.missing_firmware),
            )
            for name, record in self.modules.items()
        ]

    def module_classes(self) -> dict[str, int | None]:
        return {name: record.base_class for name, record in self.modules.items()}


def encode_patterns(patterns: list[PciPattern]) -> str:
    """Space-separated compact patterns, those that name only a vendor and a device
    grouped by vendor (`8086:10fb,1508`): a third of the bytes of one each."""
    tokens: list[str] = []
    vendors: dict[str, list[str]] = {}
    for pattern in patterns:
        text = pattern.compact()
        vendor, _, device = text.partition(":")
        if text.count(":") == 1 and "*" not in text:
            if vendor not in vendors:
                vendors[vendor] = []
                tokens.append(vendor)  # the vendor's place in file order
            vendors[vendor].append(device)
        else:
            tokens.append(text)
    return " ".join(f"{t}:{','.join(vendors[t])}" if t in vendors else t for t in tokens)


def decode_patterns(text: str) -> list[PciPattern]:
    """The patterns of `encode_patterns`; ValueError on anything else."""
    tokens = text.split(" ")
    if not text or len(tokens) > MAX_PATTERNS:
        raise ValueError(f"1 to {MAX_PATTERNS} space-separated PCI patterns")
    patterns: list[PciPattern] = []
    for token in tokens:
        vendor, sep, devices = token.partition(":")
        if sep and "," in devices:
            patterns += [PciPattern.from_compact(f"{vendor}:{d}") for d in devices.split(",")]
        else:
            patterns.append(PciPattern.from_compact(token))
        if len(patterns) > MAX_PATTERNS:
            raise ValueError(f"more than {MAX_PATTERNS} PCI patterns")
    return patterns


def coverage_record(
    modules: list[ModuleCoverage], classes: dict[str, int | None]
) -> DriverCoverage:
    """The record of what the build found (builder.coverage), modules by name."""
    return DriverCoverage(
        modules={
            m.name: ModuleRecord(
                pci=encode_patterns(list(m.patterns)),
                base_class=classes.get(m.name),
                firmware_complete=m.firmware_complete,
                missing_firmware=list(m.missing_firmware),
            )
            for m in sorted(modules, key=lambda m: m.name)
        }
    )
