"""The firmware names each kernel module of a tree declares (for builder.firmware).

MODULE_FIRMWARE puts `firmware=NAME` into a module's `.modinfo` section, read by
livestrap.modinfo (compressed modules decompressed by builder.coverage.read_module);
built-in drivers' go to modules.builtin.modinfo as `NAME.firmware=FILE`. A module that
cannot be read stops the scan: pruning must never drop the firmware of a module unseen.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from livestrap.builder.coverage import read_module
from livestrap.modinfo import ModinfoError, firmware_names

MODULE_SUFFIXES = (".ko", ".ko.xz", ".ko.gz", ".ko.zst")
BUILTIN_MODINFO = "modules.builtin.modinfo"


class ModuleError(ValueError):
    """A module file that could not be read (the caller then prunes nothing)."""


def module_name(path: Path) -> str:
    """`bnx2x.ko.xz` -> `bnx2x`; `-` is `_` in module names, as kmod has it."""
    return path.name.split(".ko", 1)[0].replace("-", "_")


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
    module cannot be read."""
    refs: dict[str, list[str]] = {}
    builtin = moddir / BUILTIN_MODINFO
    if builtin.is_file():
        refs.update(builtin_refs(builtin.read_bytes()))
    for path in sorted(moddir.rglob("*.ko*")):
        if not path.name.endswith(MODULE_SUFFIXES) or not path.is_file():
            continue
        try:
            names = firmware_names(read_module(path))
        except (OSError, ModinfoError, lzma.LZMAError, EOFError) as err:
            raise ModuleError(f"{path.name}: {err}") from None
        if names:
            refs.setdefault(module_name(path), []).extend(names)
    return refs
