"""Stage bootfiles: take the kernel and the live-boot initramfs out of the rootfs.

The initramfs is checked for what `fetch=` needs before the image can be stored, so a
broken initramfs fails the build instead of a node's boot.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from livestrap.errors import BuildError

# What live-boot's fetch= path needs inside the initramfs: its scripts, DHCP (klibc
# ipconfig), a downloader (busybox wget) and the squashfs + overlay filesystems.
REQUIRED_FILES = {
    "live-boot scripts": re.compile(r"(^|/)scripts/live\Z"),
    "DHCP client (ipconfig)": re.compile(r"(^|/)bin/ipconfig\Z"),
    "downloader (busybox)": re.compile(r"(^|/)bin/busybox\Z"),
}
REQUIRED_MODULES = {"squashfs": "CONFIG_SQUASHFS", "overlay": "CONFIG_OVERLAY_FS"}


def find_kernel(rootfs: Path) -> str:
    """The version of the one kernel installed in /boot."""
    kernels = sorted(p.name.removeprefix("vmlinuz-") for p in (rootfs / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise BuildError("bootfiles", "no kernel in /boot (is the kernel package installed?)")
    if len(kernels) > 1:
        raise BuildError("bootfiles", f"more than one kernel installed: {', '.join(kernels)}")
    return kernels[0]


def kernel_config(rootfs: Path, version: str) -> dict[str, str]:
    path = rootfs / "boot" / f"config-{version}"
    if not path.is_file():
        return {}
    config = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("CONFIG_"):
            config[key] = value
    return config


def initramfs_problems(listing: list[str], config: dict[str, str]) -> list[str]:
    """What the initramfs lacks for live-boot's fetch= (empty when it is complete)."""
    problems = [
        what
        for what, pattern in REQUIRED_FILES.items()
        if not any(pattern.search(f) for f in listing)
    ]
    for module, symbol in REQUIRED_MODULES.items():
        if config.get(symbol) == "y":
            continue
        if not any(re.search(rf"/{module}\.ko(\.[a-z]+)?\Z", f) for f in listing):
            problems.append(f"{module} module")
    return problems


def copy_boot_files(rootfs: Path, version: str, out: Path) -> None:
    boot = rootfs / "boot"
    for src, dest in ((f"vmlinuz-{version}", "vmlinuz"), (f"initrd.img-{version}", "initrd.img")):
        if not (boot / src).is_file():
            raise BuildError("bootfiles", f"/boot/{src} is missing from the rootfs")
        shutil.copyfile(boot / src, out / dest)
        (out / dest).chmod(0o644)
