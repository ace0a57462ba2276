"""The boot timeline's picture: where each phase's bar goes in the SVG (one row per phase,
x proportional to time since the boot began). Pure geometry; nodes.html draws it with
attributes and classes only (the CSP allows no inline style)."""

from __future__ import annotations

from dataclasses import dataclass

from livestrap.master.services.boot_timeline import BootTimeline, Phase

LEFT = 90  # the phase names' column
TRACK = 620  # the bars' width at most
ROW = 26
BAR = 16
MIN_BAR = 3
HEIGHT_PAD = 8
WIDTH = LEFT + TRACK + 170  # the labels' column on the right


@dataclass(frozen=True)
class Bar:
    phase: str
    state: str
    x: int
    y: int
    width: int
    label: str  # what the bar says at its right: its length, or why it has none


def seconds(s: float) -> str:
    if s < 60:
        return f"{s:.1f} s"
    return f"{int(s // 60)} min {int(s % 60)} s"


def _label(p: Phase, now: float) -> str:
    if p.name == "firmware" and p.start is not None and p.end is not None:
        return f"loader, then {seconds(p.end - p.start)}"  # UEFI HTTP boot fetched it
    if p.name == "firmware":
        return "before the first request" if p.state == "done" else "not seen"
    if p.state == "missing":
        return "not reached"
    if p.start is None:
        return "waiting" if p.state != "done" else "not recorded"
    if p.state in ("running", "stalled", "refused"):
        return f"{p.state} for {seconds(max(0.0, now - p.start))}"
    if p.name == "report":
        return "reported"
    return seconds(p.end - p.start) if p.end is not None else "done"


def layout(timeline: BootTimeline, now: float) -> list[Bar]:
    """One bar per phase; a missing one spans the rest of the track, greyed."""
    times = [t for p in timeline.phases for t in (p.start, p.end) if t is not None]
    t0 = timeline.started if timeline.started is not None else min(times, default=now)
    open_phase = any(p.state in ("running", "stalled", "refused") for p in timeline.phases)
    t1 = max([*times, now] if open_phase else times, default=t0)
    span = max(t1 - t0, 1e-6)

    def x_of(t: float) -> int:
        return LEFT + round(TRACK * min(max((t - t0) / span, 0.0), 1.0))

    bars: list[Bar] = []
    reached = LEFT
    for row, p in enumerate(timeline.phases):
        y = HEIGHT_PAD + row * ROW
        if p.state == "missing":
            x, width = reached, max(LEFT + TRACK - reached, MIN_BAR)
        elif p.start is None:  # the firmware, or a phase passed but not recorded
            x, width = reached, MIN_BAR * 2
        else:
            end = p.end if p.end is not None else (now if p.state != "done" else p.start)
            x = x_of(p.start)
            width = max(x_of(end) - x, MIN_BAR)
        reached = max(reached, x + width) if p.state != "missing" else reached
        bars.append(Bar(p.name, p.state, x, y, width, _label(p, now)))
    return bars


def height(bars: list[Bar]) -> int:
    return HEIGHT_PAD * 2 + ROW * len(bars)
