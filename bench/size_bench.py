"""Size benchmark: the artifacts of an image, and root.squashfs re-made from the same
tree with each compressor mksquashfs offers us (zstd, xz, lz4): size, time, and the
total a node downloads.

Run by build_bench.py on its cold image, or alone on any stored image (as root):
`.venv/bin/python bench/size_bench.py IMAGE_DIR`.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import MB, Goal, machine_line, save_part

from livestrap.builder import guards
from livestrap.builder.squashfs import COMPRESSOR_OPTIONS, mksquashfs_argv

COMMAND = ".venv/bin/python bench/size_bench.py IMAGE_DIR"
SEES = ("boot",)  # the boot section's smallest memory that registered, beside the formula


def measure(image_dir: Path, work: Path) -> dict[str, Any]:
    """Unpack the image's root.squashfs once, squash it again per compressor."""
    work.mkdir(parents=True, exist_ok=True)
    tree = work / "tree"
    subprocess.run(
        ["unsquashfs", "-q", "-d", str(tree), str(image_dir / "root.squashfs")],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    boot = {name: (image_dir / name).stat().st_size for name in ("vmlinuz", "initrd.img")}
    compressions: dict[str, Any] = {}
    for compression in COMPRESSOR_OPTIONS:
        dest = work / f"root-{compression}.squashfs"
        t0 = time.monotonic()
        subprocess.run(mksquashfs_argv(tree, dest, compression), check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
        size = dest.stat().st_size
        compressions[compression] = {
            "squashfs_bytes": size,
            "seconds": round(time.monotonic() - t0, 1),
            "download_bytes": size + sum(boot.values()),
            "options": " ".join(COMPRESSOR_OPTIONS[compression]),
        }
        dest.unlink()
        print(compression, size, compressions[compression]["seconds"], "s", flush=True)
    shutil.rmtree(tree)
    ram = boot_ram(image_dir)
    print(ram.describe(), flush=True)
    part = {
        "image": image_dir.name,
        "boot_files": boot,
        "squashfs_bytes": (image_dir / "root.squashfs").stat().st_size,
        "compressions": compressions,
        # the guards' formula (livestrap.builder.guards), to set against boot_bench's
        # smallest memory that registers
        "boot_ram": {
            "mib": ram.mib,
            "kernel_bytes": ram.kernel,
            "initramfs_bytes": ram.initramfs,
            "squashfs_bytes": ram.squashfs,
            "margin_mib": ram.margin_mib,
        },
    }
    save_part("size", part)
    return part


def boot_ram(image_dir: Path) -> guards.BootRam:
    """The RAM a node needs to boot the image, as the build's guards stage reckons it."""
    listing = subprocess.run(["lsinitramfs", "-l", str(image_dir / "initrd.img")], check=True,
                             capture_output=True, text=True).stdout.splitlines()  # fmt: skip
    return guards.measure(image_dir, listing)


def goals(r: dict[str, Any]) -> list[Goal]:
    squashfs, initrd = r["squashfs_bytes"] / MB, r["boot_files"]["initrd.img"] / MB
    return [
        ("root.squashfs, every storage and network driver kept", "≤ 80 MB",
         f"{squashfs:.1f} MB", squashfs <= 80),
        ("initrd.img", "≤ 20 MB", f"{initrd:.1f} MB", initrd <= 20),
    ]  # fmt: skip


def render_boot_ram(r: dict[str, Any], boot: dict[str, Any] | None) -> list[str]:
    """The guards' formula, term by term, beside the smallest memory that registered."""
    ram = r.get("boot_ram")
    if not ram:  # figures from before the formula was stored
        return []
    kernel, initramfs = ram["kernel_bytes"] / guards.MIB, ram["initramfs_bytes"] / guards.MIB
    squashfs = ram.get("squashfs_bytes", r["squashfs_bytes"]) / guards.MIB
    terms = (
        f"kernel {kernel:.1f} + initramfs {initramfs:.1f} + squashfs {squashfs:.1f} + margin "
        f"{ram['margin_mib']} = **{ram['mib']} MiB**"
    )
    smallest = (boot or {}).get("memory", {}).get("smallest_mib")
    if smallest is None:
        measured = ["The boot section has no smallest memory that registered to set it against."]
    else:
        gap = ram["mib"] - smallest
        verdict = (
            f"the formula asks {gap} MiB more, so the guard errs on the safe side."
            if gap >= 0
            else f"**the formula is {-gap} MiB below it**: the guard would pass an image "
            "that does not boot in that memory."
        )
        measured = [f"Smallest that registered (boot section): **{smallest} MiB**;", verdict]
    return [
        f"RAM a node needs (formula, builder/guards.py, MiB): {terms}.",
        *measured,
        "Kernel: the bzImage's `init_size`; initramfs: its files unpacked, each rounded up to",
        "a 4 KiB page; squashfs: root.squashfs, which `fetch=` keeps in a tmpfs; margin: the",
        "running system on top. A build fails when the total exceeds the spec's",
        "`min_boot_ram_mb`.",
        "",
    ]


def render(r: dict[str, Any], boot: dict[str, Any] | None = None) -> list[str]:
    boot_files = r["boot_files"]
    rows = [
        f"| {name} | {c['options']} | {c['squashfs_bytes'] / MB:.1f} | {c['seconds']:.1f} | "
        f"{c['download_bytes'] / MB:.1f} |"
        for name, c in r["compressions"].items()
    ]
    return [
        "## Image size",
        "",
        machine_line(r.get("machine")),
        f"Reproduce: `{COMMAND}` (build_bench.py runs it on its cold image).",
        "",
        f"vmlinuz {boot_files['vmlinuz'] / MB:.1f} MB, initrd.img "
        f"{boot_files['initrd.img'] / MB:.1f} MB; "
        f"the built root.squashfs (default zstd) {r['squashfs_bytes'] / MB:.1f} MB.",
        "",
        "| compression | mksquashfs options | root.squashfs (MB) | squash time (s) | "
        "a node downloads (MB) |",
        "|---|---|---|---|---|",
        *rows,
        "",
        "Goals: root.squashfs ≤ 80 MB with every storage and network driver kept, initrd",
        "≤ 20 MB. Levers used: no docs, manuals, translations, udev vendor databases, iconv",
        "charsets or kernel self-tests unpacked; graphics, sound, media, wireless, staging and",
        "similar module trees never unpacked (storage and wired network kept); a",
        "`MODULES=netboot` initramfs without storage drivers, made once. All compressors use",
        "1 MiB blocks; lz4 trades size for squash and unpack speed, xz is slower to squash and",
        "to unpack on the node.",
        "",
        *render_boot_ram(r, boot),
    ]


def tiny_image(image_dir: Path) -> Path:
    """A made-up image of a few files (smoke mode): the same code path in a second."""
    tree = image_dir / "tree"
    (tree / "usr/bin").mkdir(parents=True)
    for i in range(20):
        (tree / "usr/bin" / f"tool{i}").write_bytes(bytes(range(256)) * 64 * (i + 1))
    subprocess.run(mksquashfs_argv(tree, image_dir / "root.squashfs", "zstd"), check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    (image_dir / "vmlinuz").write_bytes(b"k" * 4096)
    tiny_initrd(image_dir / "initrd.img")
    shutil.rmtree(tree)
    return image_dir


def tiny_initrd(dest: Path) -> None:
    """A gzip'd cpio of two files: lsinitramfs lists it as it lists a real initrd."""
    tree = dest.parent / "initrd-tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin/init").write_bytes(b"#!/bin/sh\n" * 1000)
    archive = subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=tree,
                             input=b".\nbin\nbin/init\n", capture_output=True,
                             check=True).stdout  # fmt: skip
    dest.write_bytes(gzip.compress(archive))
    shutil.rmtree(tree)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("image_dir", type=Path, nargs="?")
    parser.add_argument("--smoke", action="store_true", help="a made-up tiny image")
    args = parser.parse_args()
    if not args.smoke and args.image_dir is None:
        parser.error("IMAGE_DIR is needed (or --smoke)")
    with tempfile.TemporaryDirectory(prefix="livestrap-sizebench-", dir="/var/tmp") as tmp:
        image_dir = tiny_image(Path(tmp) / "image") if args.smoke else args.image_dir
        measure(image_dir, Path(tmp) / "work")


if __name__ == "__main__":
    main()
