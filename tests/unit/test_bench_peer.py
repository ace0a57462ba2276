"""bench/peer_boot.py: the paired boots' medians and ratios, and the peer section's text
for a paired run (both cold builds and both images' boots in one run)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture
def pb(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("peer_boot")


def boot(side: str, seconds: float | None, report: float = 30.0) -> dict[str, Any]:
    if seconds is None:
        return {"side": side, "registered_s": None, "reason": "Kernel panic"}
    timeline = {"script": 0.0, "kernel": 0.5, "initrd": 1.0, "squashfs-start": 9.0,
                "squashfs-end": 12.0, "report": report}  # fmt: skip
    return {"side": side, "registered_s": seconds, "timeline": timeline}


def alternating(ours: list[float | None], lb: list[float | None]) -> list[dict[str, Any]]:
    return [r for a, b in zip(ours, lb, strict=True) for r in (boot("livestrap", a),
                                                               boot("live_build", b))]  # fmt: skip


def test_medians_and_ratios(pb: ModuleType) -> None:
    s = pb.boot_summary(alternating([40.0, 44.0, 42.0], [60.0, 50.0, 63.0]))
    assert s["seconds"] == {"livestrap": [40.0, 44.0, 42.0], "live_build": [60.0, 50.0, 63.0]}
    assert s["median"] == {"livestrap": 42.0, "live_build": 60.0}
    assert s["ratio"] == 1.43  # 60 / 42
    assert s["pair_ratios"] == [1.5, 1.14, 1.5]
    assert "failures" not in s
    assert s["phases"]["livestrap"]["firmware"] == 12.0  # the median boot, 42 s - 30 s


def test_an_even_count_takes_the_middle_and_a_failure_is_left_out(pb: ModuleType) -> None:
    s = pb.boot_summary(alternating([40.0, 44.0], [None, 55.0]))
    assert s["median"] == {"livestrap": 42.0, "live_build": 55.0}
    assert s["ratio"] == 1.31
    assert s["pair_ratios"] == [None, 1.25]
    assert s["failures"] == ["Kernel panic"]


def test_no_ratio_when_one_side_never_registered(pb: ModuleType) -> None:
    s = pb.boot_summary(alternating([40.0], [None]))
    assert s["median"] == {"livestrap": 40.0, "live_build": None}
    assert s["ratio"] is None


def test_boot_rows(pb: ModuleType) -> None:
    s = pb.boot_summary(alternating([40.0, 44.0], [60.0, None]))
    assert pb.render_boot(s) == [
        "Boot: power-on → registered, BIOS, 2 boots of each image in one run, alternating",
        "(livestrap first), through the same master and iPXE script (s):",
        "",
        "| | livestrap | live-build | live-build / livestrap |",
        "|---|---|---|---|",
        "| median | 42.0 | 60.0 | **1.43×** |",
        "| every boot | 40.0, 44.0 | 60.0, – | pairs: 1.50, – |",
        "| power-on → iPXE script (median boot) | 10.0 | 30.0 | 3.00× |",
        "| script → squashfs request (median boot) | 9.0 | 9.0 | 1.00× |",
        "| squashfs download (median boot) | 3.0 | 3.0 | 1.00× |",
        "| squashfs → first report (median boot) | 18.0 | 18.0 | 1.00× |",
        "",
        "Boots that did not register: Kernel panic.",
    ]
    assert pb.render_boot(None) == []


def test_paired_text_says_what_the_run_did(pb: ModuleType) -> None:
    note = pb.load_note({"load_1min": 2.5}, {"load_1min": 1.5})
    assert note.startswith("Load: both cold builds ran in this one run, livestrap's right before")
    assert "load average 1.5 as livestrap's build started, 2.5 as live-build's did" in note
    assert "build section" not in note
    assert "build section" in pb.load_note({}, {"load_1min": 1.9})  # figures from before
    assert "build section" not in pb.intro_text("cmd", "lb 1", paired=True)
    assert pb.paired({"live_build": {"load_1min": 1.0}})
    assert not pb.paired({"live_build": {}})


def test_a_paired_part_renders_the_livestrap_stages_and_the_boots(pb: ModuleType) -> None:
    peer = importlib.import_module("peer_bench")
    sizes = {"vmlinuz": 8_000_000, "initrd.img": 18_000_000, "root.squashfs": 76_000_000}
    lb = {"seconds": 180.0, "stages": {"bootstrap": 30.0}, "load_1min": 2.0, "packages": 152,
          "sizes": {"vmlinuz-6": 8_000_000, "initrd.img-6": 36_000_000,
                    "filesystem.squashfs": 190_000_000}}  # fmt: skip
    ours = {"seconds": 60.0, "stages": {"rootfs": 30.0, "squashfs": 25.0}, "sizes": sizes,
            "packages": 149, "load_1min": 1.0}  # fmt: skip
    boots = pb.boot_summary(alternating([40.0], [50.0]))
    part = {"live_build": lb, "livestrap": ours, "ratios": peer.ratios(lb, ours),
            "commands": ["lb config"], "boot": boots}  # fmt: skip
    lines = peer.render(part)
    assert part["ratios"]["seconds"] == 3.0 and part["ratios"]["initrd"] == 2.0
    assert (
        "livestrap stages: rootfs 30.0 s, squashfs 25.0 s. live-build stages: bootstrap"
        " 30.0 s." in lines
    )
    assert any(line.startswith("- Boot: the master renders one script for both") for line in lines)
    assert "| median | 40.0 | 50.0 | **1.25×** |" in lines
    assert not any("build section" in line for line in lines)
