"""The firmware names each kernel module of a tree declares, read from the modules.

MODULE_FIRMWARE puts `firmware=NAME` into a module's `.modinfo` ELF section (what
`modinfo -F firmware` prints); built-in drivers' go to modules.builtin.modinfo as
`NAME.firmware=FILE`. Reading the section here costs one file read per module instead
of one modinfo process each. Compressed modules (.ko.xz, as Debian trixie ships them,
and .ko.gz) are decompressed first; .ko.zst (Ubuntu's) is refused, Python 3.11 has no
zstd (the caller then prunes nothing).
"""

from __future__ import annotations

import gzip
import lzma
import struct
from pathlib import Path

MAX_MODULE = 64 << 20  # a distribution kernel's largest module is ~20 MB
MAX_SECTIONS = 1 << 16
MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")
BUILTIN_MODINFO = "modules.builtin.modinfo"


class ModuleError(ValueError):
    """A module file this reader cannot read (the caller then prunes nothing)."""


def module_name(path: Path) -> str:
    """`bnx2x.ko.xz` -> `bnx2x`; `-` is `_` in module names, as kmod has it."""
    return path.name.split(".ko", 1)[0].replace("-", "_")


def read_module(path: Path) -> bytes:
    """The module's ELF bytes, decompressed; ModuleError when unreadable."""
    try:
        if path.name.endswith(".ko"):
            data = path.read_bytes()
        elif path.name.endswith(".ko.xz"):
            data = lzma.decompress(path.read_bytes())
        elif path.name.endswith(".ko.gz"):
            data = gzip.decompress(path.read_bytes())
        else:
            raise ModuleError(f"{path.name}: not a kernel module")
    except (OSError, lzma.LZMAError, EOFError) as err:
        raise ModuleError(f"{path.name}: {err}") from None
    if len(data) > MAX_MODULE:
        raise ModuleError(f"{path.name}: larger than {MAX_MODULE} bytes")
    return data


def firmware_refs(data: bytes) -> list[str]:
    """The `firmware=` names of a module's .modinfo section, in order, without repeats."""
    names: list[str] = []
    for raw in _section(data, b".modinfo").split(b"\0"):
        key, sep, value = raw.partition(b"=")
        name = value.decode("utf-8", "replace")
        if sep and key == b"firmware" and name and name not in names:
            names.append(name)
    return names


def builtin_refs(data: bytes) -> dict[str, list[str]]:
    """modules.builtin.modinfo (`NAME.key=value`, NUL-separated): NAME -> firmware."""
    found: dict[str, list[str]] = {}
    for raw in data.split(b"\0"):
        key, sep, value = raw.partition(b"=")
        name, dot, field = key.partition(b".")
        if sep and dot and field == b"firmware" and value:
            found.setdefault(name.decode("utf-8", "replace"), []).append(
                value.decode("utf-8", "replace")
            )
    return found


def tree_refs(moddir: Path) -> dict[str, list[str]]:
    """Module name -> the firmware it declares, for every module under `moddir` (and the
    built-in drivers); modules that declare none are left out. ModuleError when any
    module cannot be read: its firmware would be pruned unseen."""
    refs: dict[str, list[str]] = {}
    builtin = moddir / BUILTIN_MODINFO
    if builtin.is_file():
        refs.update(builtin_refs(builtin.read_bytes()))
    for path in sorted(moddir.rglob("*.ko*")):
        if not path.name.endswith(MODULE_SUFFIXES) or not path.is_file():
            continue
        names = firmware_refs(read_module(path))
        if names:
            refs.setdefault(module_name(path), []).extend(names)
    return refs


def _section(data: bytes, wanted: bytes) -> bytes:
    """One ELF section's bytes by name (64- or 32-bit, either byte order)."""
    if len(data) < 52 or data[:4] != b"\x7fELF":
        raise ModuleError("not an ELF file")
    is64 = {1: False, 2: True}.get(data[4])
    order = {1: "<", 2: ">"}.get(data[5])
    if is64 is None or order is None:
        raise ModuleError("unknown ELF class or byte order")
    try:
        if is64:
            (shoff,) = struct.unpack_from(order + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x3A)
            entry = order + "IIQQQQIIQQ"
        else:
            (shoff,) = struct.unpack_from(order + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(order + "HHH", data, 0x2E)
            entry = order + "IIIIIIIIII"
        if shnum > MAX_SECTIONS or shentsize < struct.calcsize(entry) or shstrndx >= shnum:
            raise ModuleError("bad ELF section header table")
        headers = [struct.unpack_from(entry, data, shoff + i * shentsize) for i in range(shnum)]
    except struct.error:
        raise ModuleError("truncated ELF section header table") from None
    # each header: (name offset, type, flags, addr, offset, size, ...)
    names = _bytes(data, headers[shstrndx][4], headers[shstrndx][5])
    for header in headers:
        start = header[0]
        end = names.find(b"\0", start)
        if start < len(names) and names[start : end if end >= 0 else None] == wanted:
            return _bytes(data, header[4], header[5])
    return b""  # no .modinfo: declares nothing


def _bytes(data: bytes, offset: int, size: int) -> bytes:
    if offset + size > len(data):
        raise ModuleError("an ELF section runs past the end of the file")
    return data[offset : offset + size]
