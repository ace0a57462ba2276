"""Which kernel module trees a discovery image leaves out, and removing them.

The root image keeps every storage and wired network driver; the initramfs, which only
has to reach the network and mount the squashfs, leaves out storage as well.
"""

from __future__ import annotations

import shutil
from pathlib import Path

# Kernel module trees a discovery image never needs. Storage and wired network drivers
# (ethernet, infiniband, USB NICs, SCSI/ATA/NVMe/MMC, ...) all stay.
DROPPED_MODULE_TREES = tuple(
    f"kernel/{tree}"
    for tree in (
        # graphics, sound, media, radio and exotic buses
        "drivers/gpu", "sound", "drivers/media", "drivers/staging", "drivers/iio",
        "drivers/video", "drivers/comedi", "drivers/mtd", "drivers/hwmon", "drivers/isdn",
        "drivers/atm", "drivers/nfc", "drivers/w1", "drivers/soundwire", "drivers/slimbus",
        "drivers/greybus", "drivers/most", "drivers/gnss", "drivers/bluetooth",
        "drivers/input/joystick", "drivers/input/touchscreen",
        "drivers/usb/gadget", "drivers/usb/serial", "drivers/usb/misc",
        # wireless and non-Ethernet links
        "drivers/net/wireless", "drivers/net/can", "drivers/net/wwan", "drivers/net/ieee802154",
        "drivers/net/hamradio", "drivers/net/arcnet", "drivers/net/fddi", "drivers/net/plip",
        "drivers/net/slip", "net/wireless", "net/mac80211", "net/bluetooth", "net/nfc",
        "net/can", "net/atm", "net/6lowpan", "net/ieee802154", "net/mac802154",
        "net/batman-adv", "net/tipc", "net/rds", "net/dccp", "net/netrom", "net/rose",
        "net/ax25", "net/rxrpc",
        # packet filtering and network filesystems a discovery node never uses
        "net/netfilter", "net/ipv4/netfilter", "net/ipv6/netfilter", "net/bridge/netfilter",
        "net/ceph", "net/sunrpc",
        # filesystems a discovery node never mounts (ext4, vfat, squashfs, overlay stay)
        "fs/ocfs2", "fs/gfs2", "fs/btrfs", "fs/xfs", "fs/f2fs", "fs/jfs", "fs/reiserfs",
        "fs/nilfs2", "fs/ubifs", "fs/orangefs", "fs/ceph", "fs/smb", "fs/afs", "fs/coda",
        "fs/nfs", "fs/nfsd",
    )
)  # fmt: skip

# Left out of the initramfs: everything the root image drops too, plus what only a boot
# from local storage would need (the root filesystem comes over the network).
INITRAMFS_DROPPED_TREES = (
    *DROPPED_MODULE_TREES,
    *(
        f"kernel/{tree}"
        for tree in (
            "drivers/infiniband", "drivers/md", "drivers/scsi", "drivers/net/ppp",
            "fs/ext4", "fs/jbd2", "fs/isofs", "fs/udf", "fs/nfs_common", "fs/lockd",
        )
    ),
)  # fmt: skip


# Files a discovery node never reads, left out at unpack time (dpkg path-exclude): udev's
# vendor/model name databases (hwdb.bin is compiled from them, 13 MB; the agent names
# PCI devices from pci.ids), glibc's iconv charset modules, and the kernel's self-tests.
UNUSED_FILES = (
    "/usr/lib/udev/hwdb.d/20-*",
    "/lib/udev/hwdb.d/20-*",
    "/usr/lib/x86_64-linux-gnu/gconv/*.so",
    "/lib/modules/*/kernel/lib/test_*",
    "/usr/lib/modules/*/kernel/lib/test_*",
)


def dpkg_excludes() -> list[str]:
    """dpkg options that keep dropped module trees and unused files from ever being
    unpacked: cheaper than unpacking ~100 MB of modules only to delete them."""
    patterns = [
        f"{prefix}/*/{tree}/*"
        for tree in DROPPED_MODULE_TREES
        for prefix in ("/lib/modules", "/usr/lib/modules")
    ]
    return [f"path-exclude={pattern}" for pattern in (*patterns, *UNUSED_FILES)]


def drop_module_trees(rootfs: Path, kernel_version: str) -> list[str]:
    """Remove module trees listed in DROPPED_MODULE_TREES that dpkg still unpacked
    (a package outside the excludes' paths); returns what was removed."""
    base = rootfs / "usr/lib/modules" / kernel_version
    if not base.is_dir():
        base = rootfs / "lib/modules" / kernel_version
    removed = []
    for tree in DROPPED_MODULE_TREES:
        path = base / tree
        if path.is_dir():
            shutil.rmtree(path)
            removed.append(tree)
    return removed
