"""A kernel module's `.modinfo` section (what `modinfo` prints), read from the ELF file
itself: pure, stdlib. Reading it here costs one file read per module instead of one
`modinfo` process each (an image keeps ~1,500 modules), and needs no kmod on the host.

`.modinfo` is a run of NUL-terminated `key=value` strings (MODULE_FIRMWARE adds
`firmware=NAME`, MODULE_LICENSE `license=...`, ...).
"""

from __future__ import annotations

import struct

MAX_MODULE = 64 << 20  # the largest module of a distribution kernel is ~20 MB
_MAX_SECTIONS = 1 << 16


class ModinfoError(ValueError):
    """Not an ELF kernel module this reader understands."""


def modinfo_fields(data: bytes) -> list[tuple[str, str]]:
    """Every `key=value` of the module's `.modinfo` section, in order."""
    section = _section(data, b".modinfo")
    fields = []
    for raw in section.split(b"\0"):
        key, sep, value = raw.partition(b"=")
        if sep and key:
            fields.append((key.decode("ascii", "replace"), value.decode("utf-8", "replace")))
    return fields


def firmware_names(data: bytes) -> list[str]:
    """The firmware files the module may load (`modinfo -F firmware`), without repeats."""
    names: list[str] = []
    for key, value in modinfo_fields(data):
        if key == "firmware" and value and value not in names:
            names.append(value)
    return names


def _section(data: bytes, wanted: bytes) -> bytes:
    if len(data) > MAX_MODULE:
        raise ModinfoError(f"module larger than {MAX_MODULE} bytes")
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ModinfoError("not an ELF file")
    is64 = {1: False, 2: True}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if is64 is None or order is None:
        raise ModinfoError("unknown ELF class or byte order")
    try:
        if is64:
            (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
            entry = order + "IIQQQQIIQQ"
        else:
            (shoff,) = struct.unpack_from(order + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
            entry = order + "IIIIIIIIII"
        if shnum > _MAX_SECTIONS or shentsize < struct.calcsize(entry) or shstrndx >= shnum:
            raise ModinfoError("bad ELF section header table")
        headers = [struct.unpack_from(entry, data, shoff + i * shentsize) for i in range(shnum)]
    except struct.error:
        raise ModinfoError("truncated ELF section header table") from None
    # (name, type, flags, addr, offset, size, ...)
    names = _bytes(data, headers[shstrndx][4], headers[shstrndx][5])
    for header in headers:
        name_at, offset, size = header[0], header[4], header[5]
        end = names.find(b"\0", name_at)
        if name_at < len(names) and names[name_at : end if end >= 0 else None] == wanted:
            return _bytes(data, offset, size)
    raise ModinfoError(f"no {wanted.decode()} section")


def _bytes(data: bytes, offset: int, size: int) -> bytes:
    if offset + size > len(data):
        raise ModinfoError("an ELF section runs past the end of the file")
    return data[offset : offset + size]
