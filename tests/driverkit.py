"""Driver coverage test material: the real samples of tests/fixtures/drivers, a minimal
ELF kernel module writer, and a fake root tree a build would leave."""

from __future__ import annotations

import lzma
import struct
from pathlib import Path

from livestrap.drivers import ModuleCoverage, parse_modules_alias
from livestrap.store.coverage import DriverCoverage, coverage_record

FIXTURES = Path(__file__).parent / "fixtures" / "drivers"
KVER = "6.1.0-57-amd64"
# the fixture modules' kernel trees (modules.dep), as builder.coverage classes them
CLASSES = {"ixgbe": 2, "ice": 2, "mlx5_core": 2, "bnx2x": 2, "nvme": 1, "ahci": 1, "rp2": None}


def fixture_text(name: str) -> str:
    return (FIXTURES / name).read_text()


def modinfo_firmware() -> dict[str, list[str]]:
    """modinfo-firmware.txt: module -> the firmware files it names."""
    table = {}
    for line in fixture_text("modinfo-firmware.txt").splitlines():
        name, _, files = line.partition(":")
        table[name] = files.split()
    return table


def fixture_coverage(present: set[str] = frozenset()) -> DriverCoverage:  # type: ignore[assignment]
    """The record a build of the fixture modules makes, with firmware `present` in it."""
    firmware = modinfo_firmware()
    modules = [
        ModuleCoverage(name, tuple(patterns), tuple(f for f in firmware[name] if f not in present))
        for name, patterns in parse_modules_alias(fixture_text("modules.alias")).items()
    ]
    return coverage_record(modules, dict(CLASSES))


def elf_module(modinfo: list[str], *, is64: bool = True) -> bytes:
    """A relocatable ELF file with a `.modinfo` section of `key=value` strings (and the
    section name table), enough for livestrap.modinfo and for kmod's modinfo."""
    info = b"".join(f.encode() + b"\0" for f in modinfo)
    names = b"\0.modinfo\0.shstrtab\0"
    header_size, entry = (64, "<IIQQQQIIQQ") if is64 else (52, "<IIIIIIIIII")
    info_at = header_size
    names_at = info_at + len(info)
    shoff = names_at + len(names)
    shentsize = struct.calcsize(entry)
    sections = [
        struct.pack(entry, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        struct.pack(entry, 1, 1, 2, 0, info_at, len(info), 0, 0, 1, 0),
        struct.pack(entry, 10, 3, 0, 0, names_at, len(names), 0, 0, 1, 0),
    ]
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 1, 1]) + b"\0" * 9
    if is64:
        header = ident + struct.pack(
            "<HHIQQQIHHHHHH", 1, 62, 1, 0, 0, shoff, 0, header_size, 0, 0, shentsize, 3, 2
        )
    else:
        header = ident + struct.pack(
            "<HHIIIIIHHHHHH", 1, 3, 1, 0, 0, shoff, 0, header_size, 0, 0, shentsize, 3, 2
        )
    return header + info + names + b"".join(sections)


def fake_root(root: Path, firmware: dict[str, bytes], *, merged: bool = True) -> Path:
    """A root tree with the fixture modules (ELF files naming modinfo-firmware.txt's
    files; rp2 the real module, xz-compressed), modules.alias, modules.dep, and
    `firmware` (path under lib/firmware -> bytes, or b"->TARGET" for a symlink)."""
    lib = root / "usr/lib" if merged else root / "lib"
    lib.mkdir(parents=True)
    if merged:
        (root / "lib").symlink_to("usr/lib")
    moddir = lib / "modules" / KVER
    moddir.mkdir(parents=True)
    (moddir / "modules.alias").write_text(fixture_text("modules.alias"))
    dep_lines = []
    for line in fixture_text("modules.dep").splitlines():
        path = line.split(":", 1)[0]
        name = Path(path).name.removesuffix(".ko")
        target = moddir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == "rp2":
            target = target.with_name("rp2.ko.xz")
            target.write_bytes((FIXTURES / "rp2.ko.xz").read_bytes())
            path += ".xz"
        else:
            files = modinfo_firmware()[name]
            data = elf_module(["license=GPL", *(f"firmware={f}" for f in files)])
            target.write_bytes(data)
        dep_lines.append(f"{path}:")
    (moddir / "modules.dep").write_text("\n".join(dep_lines) + "\n")
    fw = lib / "firmware"
    fw.mkdir()
    for name, data in firmware.items():
        path = fw / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if data.startswith(b"->"):
            path.symlink_to(data[2:].decode())
        else:
            path.write_bytes(data)
    return root


def xz(data: bytes) -> bytes:
    return lzma.compress(data)


def add_coverage(image_dir: Path, record: DriverCoverage | None = None) -> None:
    """Give a stored image's metadata.yaml the fixture modules' coverage record."""
    from livestrap.store.manifest import METADATA, dump_metadata, parse_metadata

    meta = parse_metadata((image_dir / METADATA).read_text())
    meta.driver_coverage = record or fixture_coverage()
    (image_dir / METADATA).write_text(dump_metadata(meta))
