"""Size and RAM guards: before an image is committed, its root.squashfs and the RAM a node
needs to boot it are held to the spec's `max_image_mb` and `min_boot_ram_mb`, so that an
image too large for the fleet fails its build instead of its nodes' boots.

Units: MiB (2^20 bytes) throughout, like QEMU's `-m` and the RAM a node reports.

The RAM a node needs (`boot_ram_mib`), rounded up to a whole MiB:

    boot_ram = kernel + initramfs + squashfs + MARGIN_MIB

- kernel: the bzImage header's `init_size`, the memory the kernel takes while it
  unpacks and starts (63.6 MiB for bookworm's 6.1 amd64 kernel, whose vmlinuz is 7.8 MiB);
  the file's size when vmlinuz has no such header;
- initramfs: every file of the unpacked initramfs, each rounded up to a 4 KiB page (the
  kernel unpacks it into a RAM filesystem; 70.2 MiB for the default image's 17.6 MiB
  initrd.img, from `lsinitramfs -l`);
- squashfs: root.squashfs itself: live-boot's `fetch=` downloads it into a tmpfs and
  mounts it from there, so it stays in RAM for as long as the node runs (72.5 MiB);
- MARGIN_MIB: what the running system needs on top (systemd, udev, the agent's Python,
  the overlay's writes and page cache).

Measured on the default image (bookworm, 6.1 kernel; QEMU TCG, BIOS, `-m` below):
kernel + initramfs + squashfs = 207 MiB. With 256 MiB it registered (42.6 s; the node
reported MemTotal 205.8 MiB, one 256 MiB DIMM); with 224 MiB it ran out of memory after
switch_root and with 192 MiB it could not unpack its initramfs (docs/benchmarks.md, boot
section). MARGIN_MIB = 64 puts the formula at 271 MiB, one step above the smallest
memory that booted. The terms overlap in time (the initramfs is freed at switch_root,
before most of userspace starts), which is why the margin is smaller than userspace is.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

MIB = 1 << 20
PAGE = 4096
MARGIN_MIB = 64
TOP = 5  # how many packages and module trees a failure names

# bzImage setup header (the x86 boot protocol): "HdrS" at 0x202, the protocol version
# at 0x206, init_size (protocol 2.10 and later) at 0x260
_MAGIC_AT, _VERSION_AT, _INIT_SIZE_AT = 0x202, 0x206, 0x260
HEADER_BYTES = _INIT_SIZE_AT + 4


@dataclass(frozen=True)
class BootRam:
    """The formula's terms, in bytes, and the MiB a node needs."""

    kernel: int
    initramfs: int
    squashfs: int
    margin_mib: int = MARGIN_MIB

    @property
    def mib(self) -> int:
        total = self.kernel + self.initramfs + self.squashfs
        return -(-total // MIB) + self.margin_mib

    def describe(self) -> str:
        return (
            f"a node needs {self.mib} MiB of RAM to boot it: kernel {_mib(self.kernel)} + "
            f"initramfs unpacked {_mib(self.initramfs)} + squashfs in RAM "
            f"{_mib(self.squashfs)} + margin {self.margin_mib} MiB"
        )


def _mib(size: int) -> str:
    return f"{size / MIB:.1f} MiB"


def kernel_ram(header: bytes, file_size: int) -> int:
    """The bzImage's init_size, else (no boot header, an old protocol) the file's size."""
    if len(header) < HEADER_BYTES or header[_MAGIC_AT : _MAGIC_AT + 4] != b"HdrS":
        return file_size
    (version,) = struct.unpack_from("<H", header, _VERSION_AT)
    if version < 0x020A:
        return file_size
    init_size: int = struct.unpack_from("<I", header, _INIT_SIZE_AT)[0]
    return max(init_size, file_size)


def initramfs_ram(listing: Iterable[str]) -> int:
    """Bytes the unpacked initramfs takes, from `lsinitramfs -l` (cpio -tv lines): every
    regular file rounded up to a page."""
    total = 0
    for line in listing:
        fields = line.split()
        if len(fields) >= 5 and fields[0].startswith("-") and fields[4].isdigit():
            total += -(-int(fields[4]) // PAGE) * PAGE
    return total


def measure(image_dir: Path, initramfs_listing: Iterable[str]) -> BootRam:
    """The formula's terms for the artifacts in `image_dir`."""
    vmlinuz = image_dir / "vmlinuz"
    with vmlinuz.open("rb") as fh:
        header = fh.read(HEADER_BYTES)
    return BootRam(
        kernel=kernel_ram(header, vmlinuz.stat().st_size),
        initramfs=initramfs_ram(initramfs_listing),
        squashfs=(image_dir / "root.squashfs").stat().st_size,
    )


def over_limits(ram: BootRam, max_image_mb: int, min_boot_ram_mb: int) -> list[str]:
    """One line per limit the image breaks (empty: it keeps both)."""
    problems = []
    if ram.squashfs > max_image_mb * MIB:
        problems.append(
            f"root.squashfs is {_mib(ram.squashfs)}, more than max_image_mb ({max_image_mb} MiB)"
        )
    if ram.mib > min_boot_ram_mb:
        problems.append(
            f"{ram.describe()}: more than min_boot_ram_mb ({min_boot_ram_mb} MiB), "
            "the RAM of the smallest node it must boot"
        )
    return problems


def package_sizes(dpkg_lines: Iterable[str]) -> dict[str, int]:
    """Bytes per package from `dpkg-query -W -f='${Installed-Size}\\t${Package}\\n'`
    (Installed-Size is in KiB; a package without one counts 0)."""
    sizes: dict[str, int] = {}
    for line in dpkg_lines:
        size, _, name = line.partition("\t")
        if name:
            sizes[name] = int(size) * 1024 if size.isdigit() else 0
    return sizes


def module_tree_sizes(rootfs: Path, kernel_version: str) -> dict[str, int]:
    """Bytes under each /usr/lib/modules/<kver>/kernel/<tree> (links not followed)."""
    base = rootfs / "usr/lib/modules" / kernel_version / "kernel"
    sizes: dict[str, int] = {}
    if not base.is_dir():
        return sizes
    for tree in sorted(base.iterdir()):
        if tree.is_symlink() or not tree.is_dir():
            continue
        total = 0
        for parent, _dirs, files in os.walk(tree):
            total += sum(os.lstat(os.path.join(parent, f)).st_size for f in files)
        sizes[f"kernel/{tree.name}"] = total
    return sizes


def largest(sizes: Mapping[str, int], top: int = TOP) -> str:
    """'a 12.0 MiB, b 3.1 MiB, ...': the `top` largest, largest first (ties by name)."""
    ranked = sorted(sizes.items(), key=lambda item: (-item[1], item[0]))[:top]
    return ", ".join(f"{name} {_mib(size)}" for name, size in ranked) or "none found"


def failure_message(
    problems: list[str], packages: Mapping[str, int], module_trees: Mapping[str, int]
) -> str:
    """What a failed guard says: the limits broken, then where the bytes are."""
    return "\n".join(
        [
            *problems,
            f"largest packages (installed): {largest(packages)}",
            f"largest module trees: {largest(module_trees)}",
            "drop packages or module trees, or raise the limits in the spec",
        ]
    )
