"""bench/build_bench.py: the reproducibility row and text, the goal rows, and what the
+1 rebuild's squashfs stage costs (pure renderers over made-up figures)."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

BENCH = Path(__file__).resolve().parents[2] / "bench"
STAGES = {"prepare": 0.0, "rootfs": 10.0, "customize": 0.5, "squashfs": 20.0, "commit": 0.1}


@pytest.fixture
def bb(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("build_bench")


def run(seconds: float, **extra: Any) -> dict[str, Any]:
    return {"seconds": seconds, "stages": dict(STAGES), "peak_disk_bytes": 5e8, **extra}


def check(**same: bool) -> dict[str, Any]:
    arts = {n: {"recorded": "a" * 64, "rebuilt": "a" * 64 if s else "b" * 64, "same": s}
            for n, s in same.items()}  # fmt: skip
    return run(33.3, image="img-1", artifacts=arts)


def part(plus_seconds: float, chk: dict[str, Any] | None) -> dict[str, Any]:
    r = {"cold": run(50.0), "warm": run(0.1, runs=[0.1]),
         "plus_one": run(plus_seconds, package="jq", base_tree="k" * 8)}  # fmt: skip
    return r if chk is None else {**r, "check": chk}


def test_check_text_says_per_artifact_whether_the_sha256_matched(bb: ModuleType) -> None:
    assert bb.render_check(check(vmlinuz=True, **{"root.squashfs": False})) == [
        "Reproducibility: `livestrap build --check` of the cold image (its recorded spec",
        "rebuilt with --force from the same upstream state, nothing committed; run after the",
        "other rows, 33.3 s):",
        "vmlinuz same sha256: **yes**, root.squashfs same sha256: **no**.",
        "",
    ]


def test_a_refused_check_says_why(bb: ModuleType) -> None:
    refused = {"image": "img-1", "refused": "check: upstream changed"}
    assert bb.render_check(refused) == [
        "Reproducibility: `build --check` of the cold image refused: check: upstream changed.",
        "",
    ]
    assert bb.reproduced(refused) is None


def test_the_check_is_a_row_and_a_goal(bb: ModuleType) -> None:
    page = bb.render(part(25.0, check(vmlinuz=True, initrd=True)))
    row = "| reproducibility check (`build --check` of the cold image) | **33.3** | 0.0 | 10.0 |"
    assert any(line.startswith(row) for line in page)
    assert "vmlinuz same sha256: **yes**, initrd same sha256: **yes**." in "\n".join(page)
    goals = {what: (got, met) for what, _, got, met in bb.goals(part(25.0, check(v=True)))}
    assert goals["rebuild of the cold image's inputs: same sha256"] == ("yes", True)
    goals = {what: (got, met) for what, _, got, met in bb.goals(part(25.0, check(v=False)))}
    assert goals["rebuild of the cold image's inputs: same sha256"] == ("no", False)


def test_no_check_no_row_and_no_goal(bb: ModuleType) -> None:
    page = "\n".join(bb.render(part(25.0, None)))
    assert "Reproducibility" not in page and "reproducibility check" not in page
    assert [g[0] for g in bb.goals(part(25.0, None))][-1] == "build after adding one package"


def test_plus_one_text_gives_the_squashfs_share_and_the_goal(bb: ModuleType) -> None:
    text = " ".join(bb.where_the_time_goes(part(25.0, None)))
    assert "+1 package (`jq`): 25.0 s, of which rootfs 10.0 s and squashfs 20.0 s (80 % of" in text
    assert "the +1 goal (≤ 20 s) is **missed**." in text
    assert "`etc_1`" in text  # why mksquashfs' append is no way out
    assert "the +1 goal (≤ 20 s) is met." in " ".join(bb.where_the_time_goes(part(19.0, None)))
    goals = {what: met for what, _, _, met in bb.goals(part(25.0, None))}
    assert goals["build after adding one package"] is False
