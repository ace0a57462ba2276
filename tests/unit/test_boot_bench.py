"""bench/boot_bench.py: the memory bisection, the phase split and the section's text."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def bb(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("boot_bench")


def fake_boot(threshold: int, booted: list[int]) -> Any:
    def boot(mib: int) -> dict[str, Any]:
        booted.append(mib)
        if mib >= threshold:
            return {"registered_s": 40.0}
        return {"registered_s": None, "reason": "Kernel panic"}

    return boot


@pytest.mark.parametrize("threshold", [256, 300, 390, 512, 1000, 1024])
def test_bisect_finds_the_smallest_step(bb: ModuleType, threshold: int) -> None:
    booted: list[int] = []
    smallest, tried = bb.bisect_memory(fake_boot(threshold, booted), 256, 1024, 32)
    assert smallest is not None and smallest >= threshold and smallest - 32 < threshold
    assert smallest % 32 == 0 and len(booted) <= 7 and [t["mib"] for t in tried] == booted


def test_bisect_reuses_known_runs_and_reports_a_failing_top(bb: ModuleType) -> None:
    booted: list[int] = []
    known = {1024: {"registered_s": 41.0, "timeline": {}}}
    smallest, tried = bb.bisect_memory(fake_boot(384, booted), 256, 1024, 32, known)
    assert smallest == 384 and 1024 not in booted
    assert tried[0] == {"mib": 1024, "registered_s": 41.0}
    assert tried[1] == {"mib": 256, "registered_s": None, "reason": "Kernel panic"}
    assert bb.bisect_memory(fake_boot(2048, []), 256, 1024, 32) == (
        None, [{"mib": 1024, "registered_s": None, "reason": "Kernel panic"}])  # fmt: skip


def test_median_run(bb: ModuleType) -> None:
    runs = [{"registered_s": 50.0}, {"registered_s": None}, {"registered_s": 40.0},
            {"registered_s": 45.0}]  # fmt: skip
    assert bb.median_run(runs) == {"registered_s": 45.0}
    assert bb.median_run([{"registered_s": None, "reason": "x"}])["reason"] == "x"


RUN = {"registered_s": 40.0, "timeline": {"script": 0.0, "kernel": 0.1, "initrd": 0.2,
       "squashfs-start": 9.0, "squashfs-end": 9.8, "report": 30.0}}  # fmt: skip
PART = {
    "accel": "tcg",
    "runs": {"bios": RUN, "uefi": RUN},
    "repeats": {"bios": [40.0, 42.5, None], "uefi": [40.0]},
    "memory": {"low_mib": 256, "high_mib": 1024, "resolution_mib": 32, "smallest_mib": 320,
               "tried": [{"mib": 1024, "registered_s": 40.0},
                         {"mib": 256, "registered_s": None, "reason": "Kernel panic"},
                         {"mib": 640, "registered_s": 41.0}]},
}  # fmt: skip


def test_split(bb: ModuleType) -> None:
    assert bb.split(RUN) == {"firmware": 10.0, "fetch": 9.0, "download": 0.8, "userspace": 20.2}
    assert bb.split({"registered_s": None}) == dict.fromkeys(
        ("firmware", "fetch", "download", "userspace")
    )


def test_render_exact(bb: ModuleType) -> None:
    assert bb.render(PART) == [
        "## Boot: PXE power-on → registered (TCG)",
        "",
        "",
        "Reproduce: `.venv/bin/python bench/boot_bench.py` (as root; QEMU virtual nodes,",
        "user-mode networking, the master on 127.0.0.1; `-cpu qemu64` under TCG).",
        "",
        "| run | registered after (s) | iPXE script → kernel → initrd → squashfs start → "
        "squashfs end → report (s) |",
        "|---|---|---|",
        "| bios | 40.0 (median of 3: 40.0, 42.5, –) | 0.1 / 0.2 / 9.0 / 9.8 / 30.0 |",
        "| uefi | 40.0 (median of 1: 40.0) | 0.1 / 0.2 / 9.0 / 9.8 / 30.0 |",
        "",
        "Smallest memory that still registered: **320 MiB** (bisected over 256–1024 MiB to "
        "32 MiB, BIOS; tried in order: 1024 ✓, 256 ✗ (Kernel panic), 640 ✓). Below it the "
        "unpacked initramfs and the squashfs no longer fit in RAM beside the running system.",
        "",
        "Where the time goes (s, the median runs):",
        "",
        "| phase | bios | uefi | what runs |",
        "|---|---|---|---|",
        "| power-on → iPXE script | 10.0 | 10.0 | SeaBIOS/OVMF and the NIC's iPXE ROM under "
        "emulation, iPXE's DHCP and the TFTP script |",
        "| script → squashfs request | 9.0 | 9.0 | kernel + initrd over HTTP, kernel start, "
        "initramfs udev, live-boot's network start |",
        "| squashfs download | 0.8 | 0.8 | through slirp and socat into the node's RAM |",
        "| squashfs → first report | 20.2 | 20.2 | loop + overlay mount, switch_root, systemd "
        "to basic.target, the agent's Python start |",
        "",
        *bb.NOTES,
        "",
    ]


def test_goals(bb: ModuleType) -> None:
    assert bb.goals(PART) == [
        ("PXE power-on → registered, BIOS (TCG)", "≤ 45 s", "40.0 s", True),
        ("PXE power-on → registered, UEFI (TCG)", "≤ 45 s", "40.0 s", True),
        ("PXE boot with KVM", "≤ 15 s", "KVM not usable here", None),
        ("smallest memory that registers", "≤ 512 MiB", "320 MiB", True),
    ]


def test_old_figures_still_render(bb: ModuleType) -> None:
    old = {"accel": "tcg", "runs": {"bios": RUN}, "smallest_memory_mib": 512}
    text = "\n".join(bb.render(old))
    assert "**512 MiB**" in text and "| bios | 40.0 | " in text


def test_memory_at_the_bottom_of_the_range(bb: ModuleType) -> None:
    mem = {
        "low_mib": 256,
        "high_mib": 1024,
        "resolution_mib": 32,
        "smallest_mib": 256,
        "tried": [{"mib": 1024, "registered_s": 38.2}, {"mib": 256, "registered_s": 40.1}],
    }
    assert bb.render_memory({"memory": mem}) == [
        "Smallest memory that still registered: **256 MiB** (bisected over 256–1024 MiB to "
        "32 MiB, BIOS; tried in order: 1024 ✓, 256 ✓). The bottom of the range registered: "
        "smaller sizes were not tried."
    ]
