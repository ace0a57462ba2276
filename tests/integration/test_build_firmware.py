"""A real build with non-free firmware, from the host mirror: `firmware: [bnx2x]`, plus
firmware-realtek as a plain package so that pruning has files of dropped modules to drop
(its wireless and Bluetooth firmware) next to files a kept module declares (r8169's).

The build resolves the non-free-firmware component in, installs the packages, prunes
lib/firmware to what the kept modules declare, and records the firmware packages; the
initramfs, which live-boot's fetch= runs from, carries bnx2x's firmware too.
"""

from __future__ import annotations

import fcntl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import yaml

from helpers import TEST_CACHE, mounts_below, require_build_tools
from livestrap.builder.pipeline import build
from livestrap.resolve import resolve
from livestrap.spec import load_spec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata, read_metadata, verify_artifacts

pytestmark = pytest.mark.integration

BUILD_LOCK = Path("/run/lock/livestrap-build.lock")
LOCK_WAIT_S = 1800.0
FW = "/usr/lib/firmware"
# bnx2x's 7.13.1.0 files are in firmware-bnx2x, but the kernel's bnx2x declares only
# 7.13.15.0 and 7.13.21.0
UNDECLARED = f"{FW}/bnx2x/bnx2x-e2-7.13.1.0.fw"


@dataclass
class Built:
    meta: ImageMetadata
    log: str
    store: ImageStore
    listing: list[str]
    initrd: list[str]


def _lock(f: IO[str]) -> None:
    deadline = time.monotonic() + LOCK_WAIT_S
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                pytest.fail(f"{BUILD_LOCK} still held after {LOCK_WAIT_S:.0f} s")
            time.sleep(2)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    require_build_tools()
    tmp = tmp_path_factory.mktemp("firmware")
    spec_file = tmp / "fw.yaml"
    spec = {"label": "fwtest", "agent": False, "firmware": ["bnx2x"],
            "packages": ["firmware-realtek"]}  # fmt: skip
    spec_file.write_text(yaml.safe_dump(spec))
    store = ImageStore(tmp / "data")
    log_path = tmp / "build.log"
    BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK.open("a") as f:
        _lock(f)
        try:
            meta = build(resolve(load_spec(spec_file)), store, log_path=log_path,
                         cache_dir=TEST_CACHE, keep_tree=False)  # fmt: skip
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    image_dir = store.path(meta.id)
    listing = subprocess.run(
        ["unsquashfs", "-l", "-d", "", str(image_dir / "root.squashfs")],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    initrd = subprocess.run(
        ["lsinitramfs", str(image_dir / "initrd.img")], capture_output=True, text=True, check=True
    ).stdout.split()
    yield Built(meta, log_path.read_text(), store, listing, initrd)


def test_the_component_and_packages_are_recorded(built: Built) -> None:
    meta = built.meta
    assert meta.spec["components"] == ["main", "non-free-firmware"]
    assert meta.spec["firmware"] == ["bnx2x"]
    assert meta.firmware_packages is not None
    assert set(meta.firmware_packages) == {"firmware-bnx2x"}
    assert meta.firmware_packages["firmware-bnx2x"] == meta.packages["firmware-bnx2x"]
    assert "firmware-realtek" in meta.packages
    image_dir = built.store.path(meta.id)
    assert read_metadata(image_dir) == meta and verify_artifacts(image_dir, meta) == []
    assert "Components: main non-free-firmware" in built.log


def test_bnx2x_firmware_is_in_the_image(built: Built) -> None:
    bnx2x = [p for p in built.listing if p.startswith(f"{FW}/bnx2x/") and p.endswith(".fw")]
    assert len(bnx2x) == 6, bnx2x  # e1, e1h, e2 of 7.13.15.0 and 7.13.21.0
    assert f"{FW}/bnx2x/bnx2x-e2-7.13.21.0.fw" in bnx2x


def test_bnx2x_is_reported_as_covered(built: Built) -> None:
    """The driver coverage (metadata.yaml) finds every file bnx2x declares in the image."""
    coverage = built.meta.driver_coverage
    assert coverage is not None
    record = coverage.modules["bnx2x"]
    assert record.firmware_complete and record.missing_firmware == []
    assert record.base_class == 0x02 and "14e4:" in record.pci  # Broadcom, a network driver


def test_firmware_no_kept_module_declares_is_gone(built: Built) -> None:
    assert UNDECLARED not in built.listing
    ours = [p for p in built.listing if p.startswith(f"{FW}/")]
    assert any(p.startswith(f"{FW}/rtl_nic/rtl8168") for p in ours)  # r8169 is kept
    for dropped in ("rtlwifi", "rtw88", "rtw89", "rtl_bt"):  # wireless and Bluetooth
        assert not [p for p in ours if p.startswith(f"{FW}/{dropped}")], dropped


def test_the_log_says_what_each_package_covers(built: Built) -> None:
    version = built.meta.packages["firmware-bnx2x"]
    lines = [x.split("] ", 1)[-1] for x in built.log.splitlines()]  # "[  151.4] text"
    line = next(x for x in lines if x.startswith("firmware firmware-bnx2x "))
    assert line.startswith(f"firmware firmware-bnx2x {version}: 6 files (")
    assert "kept for bnx2x;" in line and "; 3 files (" in line


def test_the_initramfs_has_the_nic_firmware(built: Built) -> None:
    """live-boot's fetch= runs in the initramfs: the NIC must come up there."""
    assert any(p.endswith("bnx2x/bnx2x-e2-7.13.21.0.fw") for p in built.initrd)
    assert any(p.endswith("/bnx2x.ko") or p.endswith("/bnx2x.ko.xz") for p in built.initrd)


def test_no_mount_left(built: Built) -> None:
    assert mounts_below(built.store.data_dir) == []
