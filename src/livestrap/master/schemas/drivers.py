"""/api/v1/images/{id}/drivers and the node's `driver_gaps`: what an image can drive, and
which of a machine's PCI devices it cannot (livestrap.drivers)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from livestrap.lspci import MAX_TEXT

DeviceStatusName = Literal["ok", "no-driver", "no-firmware"]


class DriverClass(BaseModel):
    """One PCI base class of the image's modules (a module's class: its kernel tree)."""

    base_class: str | None = Field(description="Two hex digits; null: not known.")
    name: str
    modules: int
    patterns: int = Field(description="PCI alias patterns of those modules.")
    vendors: int = Field(description="Distinct PCI vendor ids the patterns name.")
    incomplete_firmware: int = Field(description="Modules lacking a firmware file they name.")


class ImageDrivers(BaseModel):
    """What an image's kernel modules can drive, from its metadata.yaml."""

    image: str
    modules: int
    classes: list[DriverClass]
    missing_firmware: dict[str, list[str]] = Field(
        description="Module -> the firmware files it names that the image does not have."
    )


class DeviceStatus(BaseModel):
    """One PCI device of a machine, and what the image offers it."""

    slot: str
    ids: str = Field(description="vendor:device, lowercase hex.")
    class_code: str | None = Field(description="Base class and subclass, four hex digits.")
    class_name: str
    status: DeviceStatusName
    important: bool = Field(description="A NIC or a storage controller.")
    modules: list[str] = Field(description="The image's modules whose patterns match.")
    missing_firmware: list[str]


class DriverCheck(BaseModel):
    """Every device of the machine: NICs first, then storage, then the rest."""

    image: str
    devices: list[DeviceStatus]
    gaps: int = Field(description="Devices with status no-driver or no-firmware.")
    important_gaps: int = Field(description="Of those, NICs and storage controllers.")


class DriverCheckRequest(BaseModel):
    """The machine to check: `lspci` text (`lspci -n`, `-nn`, `-mm -n`, `-nvmm`), or a
    registered node (its reported PCI facts). Exactly one."""

    lspci: str | None = Field(default=None, max_length=MAX_TEXT)
    node: str | None = Field(default=None, max_length=100, description="A node id or prefix.")

    @model_validator(mode="after")
    def _one(self) -> DriverCheckRequest:
        if (self.lspci is None) == (self.node is None):
            raise ValueError("give exactly one of lspci and node")
        return self
