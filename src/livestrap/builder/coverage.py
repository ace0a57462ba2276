"""The image's PCI driver coverage, read from the finished root tree for metadata.yaml.

From `lib/modules/<kver>/modules.alias` (the PCI aliases of every module the image
keeps; modules.dep gives each one's file) and each module's `.modinfo` firmware names,
checked against the files under the tree's lib/firmware (an `.xz` or `.zst` variant
counts: the kernel loads those too). Runs after squashfs, on the same tree.
"""

from __future__ import annotations

import fnmatch
import gzip
import lzma
import os
from pathlib import Path, PurePosixPath

from livestrap.drivers import ModuleCoverage, parse_modules_alias
from livestrap.modinfo import ModinfoError, firmware_names
from livestrap.store.coverage import DriverCoverage, coverage_record, decode_patterns

FIRMWARE_SUFFIXES = ("", ".xz", ".zst")
MAX_LINK_HOPS = 40
# module tree -> the PCI base class its drivers drive (for the class summary)
TREE_CLASSES: tuple[tuple[str, int], ...] = (
    ("kernel/drivers/net/", 0x02),
    ("kernel/drivers/infiniband/", 0x02),
    ("kernel/drivers/scsi/", 0x01),
    ("kernel/drivers/ata/", 0x01),
    ("kernel/drivers/nvme/", 0x01),
    ("kernel/drivers/block/", 0x01),
    ("kernel/drivers/message/", 0x01),
    ("kernel/drivers/mmc/", 0x08),
    ("kernel/drivers/usb/", 0x0C),
    ("kernel/drivers/thunderbolt/", 0x0C),
    ("kernel/drivers/i2c/", 0x0C),
    ("kernel/drivers/gpu/", 0x03),
    ("kernel/drivers/crypto/", 0x10),
    ("kernel/drivers/edac/", 0x06),
)


def module_dir(rootfs: Path, kernel_version: str) -> Path:
    merged = rootfs / "usr/lib/modules" / kernel_version
    return merged if merged.is_dir() else rootfs / "lib/modules" / kernel_version


def module_paths(dep_text: str) -> dict[str, str]:
    """Module name -> its path relative to the module dir, from modules.dep."""
    paths: dict[str, str] = {}
    for line in dep_text.splitlines():
        path, sep, _ = line.partition(":")
        if not sep:
            continue
        name = PurePosixPath(path).name.split(".ko", 1)[0].replace("-", "_")
        paths.setdefault(name, path)
    return paths


def tree_class(path: str) -> int | None:
    for prefix, base in TREE_CLASSES:
        if path.startswith(prefix):
            return base
    return None


def firmware_files(rootfs: Path) -> tuple[set[str], dict[str, str]]:
    """Regular files and symlinks (link -> its target, relative to lib/firmware) under
    the tree's lib/firmware; links are resolved inside the tree, never on the host."""
    files: set[str] = set()
    links: dict[str, str] = {}
    tops = [rootfs / "usr/lib/firmware"]
    if not (rootfs / "lib").is_symlink():  # not usr-merged: /lib/firmware is its own
        tops.append(rootfs / "lib/firmware")
    for top in tops:
        if top.is_symlink() or not top.is_dir():
            continue
        for parent, dirs, names in os.walk(top):
            rel = os.path.relpath(parent, top)
            for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(parent, d)))]:
                key = name if rel == "." else f"{rel}/{name}"
                full = os.path.join(parent, name)
                if os.path.islink(full):
                    target = os.readlink(full)
                    base = PurePosixPath("/lib/firmware") / rel
                    links[key] = os.path.normpath(
                        target if target.startswith("/") else str(base / target)
                    )
                else:
                    files.add(key)
    return files, links


def present(name: str, files: set[str], links: dict[str, str]) -> bool:
    """Whether firmware `name` (or its .xz/.zst form) is a file, or a link to one; a
    name with a wildcard (a few modules name a family) when any file matches it."""
    if any(c in name for c in "*?["):
        return any(fnmatch.fnmatchcase(f, name + s) for f in files for s in FIRMWARE_SUFFIXES)
    for candidate in (name + suffix for suffix in FIRMWARE_SUFFIXES):
        path = candidate
        for _ in range(MAX_LINK_HOPS):
            if path in files:
                return True
            if path not in links:
                break
            target = links[path]
            for root in ("/usr/lib/firmware/", "/lib/firmware/"):
                if target.startswith(root):
                    path = target[len(root) :]
                    break
            else:
                break
    return False


def read_module(path: Path) -> bytes:
    """The module's ELF bytes, decompressed as its suffix says (Debian's kernels ship
    plain or, since trixie, xz modules; zstd has no reader in Python's standard library
    before 3.14, so a .zst module is a problem the log names, its firmware not read)."""
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    if path.name.endswith(".zst"):
        raise ModinfoError("zstd-compressed module: its firmware names are not read")
    return data


def read_coverage(rootfs: Path, kernel_version: str) -> tuple[DriverCoverage, list[str]]:
    """The coverage record, and the problems met (a module file unreadable, ...)."""
    base = module_dir(rootfs, kernel_version)
    aliases = parse_modules_alias((base / "modules.alias").read_text(errors="replace"))
    paths = module_paths((base / "modules.dep").read_text(errors="replace"))
    files, links = firmware_files(rootfs)
    modules: list[ModuleCoverage] = []
    classes: dict[str, int | None] = {}
    problems: list[str] = []
    for name, patterns in aliases.items():
        rel = paths.get(name)
        if rel is None or not (base / rel).is_file():
            problems.append(f"{name}: in modules.alias, but no module file")
            continue
        try:
            wanted = firmware_names(read_module(base / rel))
        except (OSError, ModinfoError, lzma.LZMAError, EOFError) as err:
            problems.append(f"{name}: {err}")
            wanted = []
        missing = tuple(f for f in wanted if not present(f, files, links))
        modules.append(ModuleCoverage(name, tuple(patterns), missing))
        classes[name] = tree_class(rel)
    return coverage_record(modules, classes), problems


def summary_line(record: DriverCoverage) -> str:
    """`327 PCI modules (8410 patterns); network 104, storage 61; firmware incomplete: 35
    (bnx2x, ice, ...)`: what the build log says about the coverage."""
    mods = record.modules
    patterns = sum(len(decode_patterns(m.pci)) for m in mods.values())
    network = sum(1 for m in mods.values() if m.base_class == 0x02)
    storage = sum(1 for m in mods.values() if m.base_class == 0x01)
    lacking = sorted(name for name, m in mods.items() if not m.firmware_complete)
    shown = ", ".join(lacking[:8]) + (", ..." if len(lacking) > 8 else "")
    return (
        f"{len(mods)} PCI modules ({patterns} patterns); network {network}, "
        f"storage {storage}; firmware incomplete: {len(lacking)}"
        + (f" ({shown})" if lacking else "")
    )
