"""A node's last boot as phases, for the console's timeline picture: firmware -> script ->
kernel -> initrd -> squashfs -> report. Pure: events in, phases out.

The last boot starts at the last `script` event (GET /boot/ipxe); without one (events
pruned, or a node booted another way), at the last `report`. A phase is `done` once a
later one was seen (one never recorded but passed shows as done, without times), `running`
while it is the last one seen and younger than its STALL_S, `stalled` past that, and
`missing` after the last one seen. The firmware's time is known to the master only when
it fetched its loader over HTTP (UEFI HTTP boot: a `loader` event, claimed for the MAC
by the script request after it): the firmware phase then runs from that fetch to the
script. Otherwise no request precedes the script, and it shows as the start. Refused
reports since the boot began and no report after them make the report phase `refused`,
with their reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

PHASES = ("firmware", "script", "kernel", "initrd", "squashfs", "report")
State = Literal["done", "running", "stalled", "missing", "refused"]
# Seconds a phase may take before the boot counts as stuck in it (the squashfs is large).
STALL_S = {"script": 60.0, "kernel": 120.0, "initrd": 300.0, "squashfs": 900.0, "report": 300.0}
START_KIND = {"script": "script", "kernel": "kernel", "initrd": "initrd",
              "squashfs": "squashfs-start", "report": "report"}  # fmt: skip
MAX_REASON = 200
# a loader fetched this long before the script is that boot's (the firmware gets it, iPXE
# starts, DHCPs and asks for the script: seconds apart); services.boot_events claims it
LOADER_CLAIM_S = 120.0


class Event(Protocol):
    """What a BootEvent has (tests pass plain objects)."""

    @property
    def at(self) -> float: ...
    @property
    def kind(self) -> str: ...
    @property
    def detail(self) -> Any: ...


@dataclass(frozen=True)
class Phase:
    name: str
    state: State
    start: float | None = None  # epoch seconds; None: not recorded
    end: float | None = None  # None: not over (running, stalled) or not recorded


@dataclass(frozen=True)
class Refusal:
    at: float
    reason: str
    count: int


@dataclass(frozen=True)
class BootTimeline:
    phases: list[Phase]
    refusals: list[Refusal] = field(default_factory=list)
    started: float | None = None  # the boot's first event


def _boot_events(events: list[Event]) -> list[Event]:
    """The events of the last boot (from its last script request, else its last report)."""
    for kind in ("script", "report"):
        starts = [i for i, e in enumerate(events) if e.kind == kind]
        if starts:
            return events[starts[-1] :]
    return []


def refusal_of(event: Event) -> Refusal:
    detail = event.detail if isinstance(event.detail, dict) else {}
    reason, count = detail.get("reason"), detail.get("count")
    return Refusal(
        at=event.at,
        reason=str(reason)[:MAX_REASON] if reason else "not given",
        count=count if isinstance(count, int) and count > 0 else 1,
    )


def boot_timeline(events: Iterable[Event], now: float) -> BootTimeline:
    """The phases of the last boot in `events` (any order), as of `now`."""
    ordered = sorted(events, key=lambda e: e.at)
    boot = _boot_events(ordered)
    starts: dict[str, float] = {}
    for e in boot:
        for name, kind in START_KIND.items():
            if e.kind == kind and name not in starts:
                starts[name] = e.at
    squashfs_end = next((e.at for e in boot if e.kind == "squashfs-end"), None)
    refused_at = next((e.at for e in boot if e.kind == "refused"), None)
    last = max((i for i, name in enumerate(PHASES) if name in starts), default=-1)
    waiting_since = None  # the report phase's start when it has no report yet
    refused = "report" not in starts and refused_at is not None
    if refused:
        last, waiting_since = len(PHASES) - 1, refused_at  # the agent ran: it was refused
    elif squashfs_end is not None and PHASES[last] == "squashfs":
        last, waiting_since = len(PHASES) - 1, squashfs_end  # downloaded: report pending
    loader = _loader_before(ordered, boot)
    phases = [
        Phase("firmware", "done", loader, starts["script"])
        if loader is not None
        else Phase("firmware", "done" if last >= 0 else "missing")
    ]
    for i, name in enumerate(PHASES[1:], start=1):
        start = starts.get(name)
        later = [starts[n] for n in PHASES[i + 1 :] if n in starts]
        if name == "squashfs" and squashfs_end is not None:
            later.insert(0, squashfs_end)
        if i < last or (name == "report" and start is not None):
            end = start if name == "report" else min(later, default=waiting_since)
            phases.append(Phase(name, "done", start, end))
        elif i == last:
            since = start if start is not None else waiting_since
            assert since is not None
            state: State = "stalled" if now - since > STALL_S[name] else "running"
            phases.append(Phase(name, "refused" if refused else state, since))
        else:
            phases.append(Phase(name, "missing"))
    refusals = [refusal_of(e) for e in ordered if e.kind == "refused"]
    started = loader if loader is not None else boot[0].at if boot else None
    return BootTimeline(phases, refusals, started)


def _loader_before(ordered: list[Event], boot: list[Event]) -> float | None:
    """When the firmware fetched the loader of the boot's script request, if it did."""
    if not boot or boot[0].kind != "script":
        return None
    script_at = boot[0].at
    since = script_at - LOADER_CLAIM_S
    fetched = [e.at for e in ordered if e.kind == "loader" and since <= e.at <= script_at]
    return fetched[-1] if fetched else None
