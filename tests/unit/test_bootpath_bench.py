"""bench/bootpath_bench.py: the section's table (medians, failed boots shown as ✗)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_render_table(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    bp = importlib.import_module("bootpath_bench")
    lines = bp.render(
        {"accel": "tcg", "runs": {"bios": [40.0, 38.5], "secure-boot": [None, 120.2]}}
    )
    assert lines[0] == "## Boot paths: iPXE, Secure Boot, UEFI HTTP boot (TCG)"
    rows = [line for line in lines if line.startswith("| BIOS") or line.startswith("| Secure")]
    assert rows == [
        "| BIOS: SeaBIOS, QEMU's iPXE ROM, kernel + initrd over HTTP | 38.5 | 40.0, 38.5 |",
        "| Secure Boot: OVMF enforcing, shim -> GRUB over TFTP, kernel + initrd over TFTP"
        " | 120.2 | ✗, 120.2 |",
    ]


def test_firmware_section_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    fb = importlib.import_module("firmware_bench")
    run = {"seconds": 190.0, "squashfs": 85_209_088, "initrd": 25_088_544, "boot_ram_mb": 319,
           "firmware_packages": {"firmware-bnx2x": "1"}, "fw_entries_in_squashfs": 149,
           "fw_entries_in_initrd": 110}  # fmt: skip
    lines = fb.render({"runs": {"all-network": run}})
    assert "| `firmware: all-network` | 1 | 85.2 | 25.1 | 319 | 149 / 110 | 190 |" in lines
