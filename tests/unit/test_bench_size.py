"""bench/size_bench.py: the guards' RAM formula rendered term by term beside the boot
section's smallest memory that registered."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"
MIB = 1 << 20


@pytest.fixture
def sb(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("size_bench")


def size_part(boot_ram: bool = True) -> dict[str, Any]:
    r: dict[str, Any] = {
        "boot_files": {"vmlinuz": 8_222_656, "initrd.img": 18_426_042},
        "squashfs_bytes": int(72.5 * MIB),
        "compressions": {},
    }
    if boot_ram:
        r["boot_ram"] = {"mib": 271, "kernel_bytes": int(63.6 * MIB),
                         "initramfs_bytes": int(70.2 * MIB), "squashfs_bytes": int(72.5 * MIB),
                         "margin_mib": 64}  # fmt: skip
    return r


def boot(smallest: int | None) -> dict[str, Any]:
    return {"memory": {"smallest_mib": smallest, "low_mib": 256, "high_mib": 1024}}


FORMULA = ("RAM a node needs (formula, builder/guards.py, MiB): kernel 63.6 + initramfs 70.2 "
           "+ squashfs 72.5 + margin 64 = **271 MiB**.")  # fmt: skip
TAIL = [
    "Kernel: the bzImage's `init_size`; initramfs: its files unpacked, each rounded up to",
    "a 4 KiB page; squashfs: root.squashfs, which `fetch=` keeps in a tmpfs; margin: the",
    "running system on top. A build fails when the total exceeds the spec's",
    "`min_boot_ram_mb`.",
    "",
]


def test_formula_beside_the_smallest_memory_that_registered(sb: ModuleType) -> None:
    assert sb.render_boot_ram(size_part(), boot(256)) == [
        FORMULA,
        "Smallest that registered (boot section): **256 MiB**;",
        "the formula asks 15 MiB more, so the guard errs on the safe side.",
        *TAIL,
    ]


def test_a_formula_below_what_booted_is_called_out(sb: ModuleType) -> None:
    lines = sb.render_boot_ram(size_part(), boot(288))
    assert lines[2] == ("**the formula is 17 MiB below it**: the guard would pass an image "
                        "that does not boot in that memory.")  # fmt: skip


def test_without_a_boot_section_the_formula_stands_alone(sb: ModuleType) -> None:
    assert sb.render_boot_ram(size_part(), None) == [
        FORMULA,
        "The boot section has no smallest memory that registered to set it against.",
        *TAIL,
    ]
    assert sb.render_boot_ram(size_part(), boot(None))[1].startswith("The boot section has no")


def test_old_figures_without_the_formula_render_as_before(sb: ModuleType) -> None:
    assert sb.render_boot_ram(size_part(boot_ram=False), boot(256)) == []
    assert sb.render(size_part(boot_ram=False))[-1] == ""


def test_the_page_hands_the_boot_part_to_the_size_section(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(BENCH))
    report = importlib.import_module("report")
    lines = report.render_section("size", "size_bench", {"size": size_part(), "boot": boot(256)})
    assert "Smallest that registered (boot section): **256 MiB**;" in lines
