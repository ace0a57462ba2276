"""Pure parsers for /proc, /sys and DMI text: text in, plain dicts out, no I/O.

Keeping them pure lets every format be unit-tested on captured fixtures while the
collectors only read files. Tool outputs (dmidecode, lspci, ethtool, lldpcli, ip)
are parsed in `toolfacts`; both are re-exported here as the single parser API.
Units: sizes in bytes, speeds in Mb/s (MT/s for memory), ids as lowercase hex.
"""

from __future__ import annotations

import re
from typing import Any

from .toolfacts import (
    parse_dmidecode_memory,
    parse_ethtool,
    parse_ip_addr_json,
    parse_lldpcli_keyvalue,
    parse_lspci_vmmnn,
)

__all__ = [
    "SECTOR_BYTES",
    "clean_dmi",
    "disk_size_bytes",
    "disk_transport",
    "firmware_type",
    "hex_id",
    "parse_cpuinfo",
    "parse_dmidecode_memory",
    "parse_ethtool",
    "parse_ip_addr_json",
    "parse_lldpcli_keyvalue",
    "parse_lspci_vmmnn",
    "parse_meminfo",
    "parse_vpd_pg80",
    "pci_address_in_path",
]

SECTOR_BYTES = 512
# Strings firmware vendors leave in unset SMBIOS fields; reporting them as serials
# would make every board from that vendor look like the same node.
_DMI_PLACEHOLDERS = frozenset(
    {
        "",
        "none",
        "n/a",
        "na",
        "not specified",
        "not available",
        "not applicable",
        "not present",
        "unknown",
        "default string",
        "to be filled by o.e.m.",
        "system serial number",
        "system product name",
        "system manufacturer",
        "chassis serial number",
        "0123456789",
        "123456789",
        "00000000",
        "0000000000",
        "00000000-0000-0000-0000-000000000000",
        "03000200-0400-0500-0006-000700080009",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    }
)
_PCI_ADDRESS = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\Z")


def clean_dmi(value: str | None) -> str | None:
    """A DMI/SMBIOS string stripped, or None when it is a known placeholder."""
    if value is None:
        return None
    text = value.strip().strip("\x00").strip()
    return None if text.lower() in _DMI_PLACEHOLDERS else text


def firmware_type(efi_dir_exists: bool) -> str:
    """The kernel creates /sys/firmware/efi only when booted by UEFI firmware."""
    return "uefi" if efi_dir_exists else "bios"


# EFI_GLOBAL_VARIABLE: SecureBoot is 4 bytes of attributes, then 1 byte (1: enforcing)
SECURE_BOOT_VAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def secure_boot_state(efi_dir_exists: bool, variable: bytes | None) -> bool | None:
    """True when the firmware enforces Secure Boot, False when it does not or is BIOS,
    None when a UEFI machine does not say (no efivarfs, an odd variable)."""
    if not efi_dir_exists:
        return False
    if variable is None or len(variable) != 5:
        return None
    return variable[4] == 1


def disk_size_bytes(sectors_text: str) -> int:
    """/sys/block/X/size counts 512-byte sectors whatever the device's block size."""
    return int(sectors_text.strip()) * SECTOR_BYTES


def hex_id(text: str) -> str:
    """sysfs ids (`0x8086`, `0x020000`) as bare lowercase hex, the form lspci prints."""
    value = text.strip().lower()
    return value[2:] if value.startswith("0x") else value


def pci_address_in_path(path: str) -> str | None:
    """The PCI function nearest to a resolved sysfs device path (virtio sits below it)."""
    for part in reversed(path.strip("/").split("/")):
        if _PCI_ADDRESS.match(part):
            return part
    return None


def disk_transport(device_path: str) -> str | None:
    """Guess the bus from the resolved /sys/block/X path; order matters (USB disks are SCSI)."""
    path = device_path + "/"
    if re.search(r"/usb\d+/", path):
        return "usb"
    if "/mmc_host/" in path or re.search(r"/mmc\d+:", path):
        return "mmc"
    if "/nvme" in path:
        return "nvme"
    if re.search(r"/ata\d+/", path):
        return "sata"
    if "/end_device-" in path or "/sas_" in path:
        return "sas"
    if re.search(r"/host\d+/", path):
        return "scsi"
    if re.search(r"/virtio\d+/", path):
        return "virtio"
    if "/xen/" in path or "/vbd-" in path:
        return "xen"
    return None


def parse_vpd_pg80(raw: bytes) -> str | None:
    """SCSI VPD page 0x80 (unit serial number): a 4-byte header, then ASCII padded with spaces."""
    if len(raw) <= 4:
        return None
    length = int.from_bytes(raw[2:4], "big")
    serial = raw[4 : 4 + length].decode("ascii", errors="replace")
    return clean_dmi(serial)


def _cpuinfo_blocks(text: str) -> list[dict[str, str]]:
    blocks: list[dict[str, str]] = [{}]
    for line in text.splitlines():
        if not line.strip():
            if blocks[-1]:
                blocks.append({})
            continue
        key, sep, value = line.partition(":")
        if sep:
            blocks[-1].setdefault(key.strip(), value.strip())
    return [block for block in blocks if block]


def parse_cpuinfo(text: str) -> dict[str, Any]:
    """Model, sockets, cores, threads and the flags that matter for placement.

    sockets = distinct `physical id`, cores = distinct (physical id, core id),
    threads = `processor` entries. Without topology lines (some VMs, ARM), each
    processor counts as a core on one socket.
    """
    blocks = _cpuinfo_blocks(text)
    processors = [b for b in blocks if "processor" in b]
    model = None
    flags: set[str] = set()
    for block in processors:
        model = model or block.get("model name") or block.get("cpu model") or block.get("Model")
        flags = flags or set((block.get("flags") or block.get("Features") or "").split())
    sockets = {b["physical id"] for b in processors if "physical id" in b}
    cores = {(b.get("physical id"), b["core id"]) for b in processors if "core id" in b}
    threads = len(processors)
    virtualization = "vmx" if "vmx" in flags else "svm" if "svm" in flags else None
    return {
        "model": model,
        "sockets": len(sockets) or (1 if threads else 0),
        "cores": len(cores) or threads,
        "threads": threads,
        "flags": {
            "virtualization": virtualization,
            "aes": "aes" in flags,
            "avx": "avx" in flags,
            "avx2": "avx2" in flags,
            "avx512": "avx512f" in flags,
        },
    }


def parse_meminfo(text: str) -> dict[str, int]:
    """Every /proc/meminfo field; `kB` values (really KiB) converted to bytes."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        fields = rest.split()
        if not sep or not fields or not fields[0].isdigit():
            continue
        scale = 1024 if len(fields) > 1 and fields[1] == "kB" else 1
        values[key.strip()] = int(fields[0]) * scale
    return values
