"""The boot timeline's phases (a pure function of the events) and its bars' geometry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from livestrap.master.console.timeline import LEFT, TRACK, layout
from livestrap.master.services.boot_timeline import PHASES, boot_timeline

pytestmark = pytest.mark.unit


@dataclass
class E:
    at: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


def states(events: list[E], now: float) -> dict[str, str]:
    return {p.name: p.state for p in boot_timeline(events, now).phases}


FULL = [E(100, "script"), E(101, "kernel"), E(103, "initrd"), E(110, "squashfs-start"),
        E(150, "squashfs-end"), E(170, "report")]  # fmt: skip


def test_a_whole_boot_is_done_with_each_phase_timed() -> None:
    t = boot_timeline(FULL, now=200)
    assert [p.name for p in t.phases] == list(PHASES)
    assert {p.state for p in t.phases} == {"done"}
    spans = {p.name: (p.start, p.end) for p in t.phases}
    assert spans == {"firmware": (None, None), "script": (100, 101), "kernel": (101, 103),
                     "initrd": (103, 110), "squashfs": (110, 150),
                     "report": (170, 170)}  # fmt: skip
    assert t.started == 100 and t.refusals == []


def test_no_events_is_all_missing() -> None:
    assert set(states([], now=0).values()) == {"missing"}


@pytest.mark.parametrize(
    ("cut", "now", "where", "state"),
    [
        (1, 110, "script", "running"),
        (1, 500, "script", "stalled"),
        (2, 150, "kernel", "running"),
        (3, 1000, "initrd", "stalled"),
        (4, 500, "squashfs", "running"),
        (4, 2000, "squashfs", "stalled"),
        (5, 200, "report", "running"),  # downloaded, the agent not heard from yet
        (5, 1000, "report", "stalled"),
    ],
)
def test_a_boot_that_stopped_shows_where(cut: int, now: float, where: str, state: str) -> None:
    got = states(FULL[:cut], now)
    at = PHASES.index(where)
    assert got[where] == state
    assert all(got[p] == "done" for p in PHASES[:at])
    assert all(got[p] == "missing" for p in PHASES[at + 1 :])


def test_the_last_boot_counts_not_the_earlier_ones() -> None:
    again = [*FULL, E(300, "script"), E(301, "kernel")]
    got = states(again, now=310)
    assert got["kernel"] == "running" and got["initrd"] == got["report"] == "missing"


def test_a_boot_seen_only_by_its_report_passed_every_phase() -> None:
    t = boot_timeline([E(50, "report")], now=60)
    assert {p.state for p in t.phases} == {"done"}
    assert [p.start for p in t.phases] == [None, None, None, None, None, 50]


def test_refused_reports_mark_the_report_phase_with_their_reason() -> None:
    events = [*FULL[:5], E(160, "refused", {"reason": "wrong discovery token", "count": 7})]
    t = boot_timeline(events, now=170)
    got = {p.name: p.state for p in t.phases}
    assert got["report"] == "refused" and got["squashfs"] == "done"
    assert [(r.reason, r.count) for r in t.refusals] == [("wrong discovery token", 7)]
    fixed = boot_timeline([*events, E(200, "report")], now=210)  # the token was fixed
    assert fixed.phases[-1].state == "done" and len(fixed.refusals) == 1


def test_a_refusal_with_a_strange_detail_still_shows() -> None:
    (r,) = boot_timeline([E(1, "report"), E(2, "refused", {"reason": "x" * 999, "count": -1})],
                         now=3).refusals  # fmt: skip
    assert len(r.reason) == 200 and r.count == 1


def test_bars_follow_time_and_stay_on_the_track() -> None:
    bars = layout(boot_timeline(FULL, now=200), now=200)
    assert [b.phase for b in bars] == list(PHASES)
    by = {b.phase: b for b in bars}
    assert by["script"].x == LEFT and by["squashfs"].width > by["kernel"].width
    assert all(b.x >= LEFT and b.x + b.width <= LEFT + TRACK + 6 for b in bars)
    assert by["squashfs"].label == "40.0 s" and by["firmware"].label == "before the first request"
    assert len({b.y for b in bars}) == len(bars)  # one row each


def test_a_stalled_boot_draws_missing_phases_after_it() -> None:
    bars = layout(boot_timeline(FULL[:3], now=1000), now=1000)
    by = {b.phase: b for b in bars}
    assert by["initrd"].state == "stalled" and by["initrd"].label.startswith("stalled for 14 min")
    assert by["squashfs"].state == "missing" and by["squashfs"].label == "not reached"
    assert by["squashfs"].x >= by["initrd"].x + by["initrd"].width - 1


def test_a_loader_fetched_over_http_times_the_firmware_phase() -> None:
    """UEFI HTTP boot fetches its loader first (a `loader` event, claimed for the MAC by
    the script request): the firmware phase runs from it to the script."""
    older = E(-500, "loader")  # an earlier boot's: too long before this script
    t = boot_timeline([older, E(92, "loader"), *FULL], now=200)
    assert (t.phases[0].start, t.phases[0].end, t.started) == (92, 100, 92)
    by = {b.phase: b for b in layout(t, now=200)}
    assert by["firmware"].label == "loader, then 8.0 s" and by["firmware"].x == LEFT
    assert by["script"].x > LEFT
    alone = boot_timeline([older, *FULL], now=200)
    assert (alone.phases[0].start, alone.started) == (None, 100)
