"""The console's overview: node counts, the refused reports of the last day, the builds
going, the last boot events. Each is one indexed query (nodes.last_seen_at, boot_events.at,
builds.state), so the overview stays cheap with a large fleet and a long event history."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from livestrap.master.models import BootEvent, Build, Node
from livestrap.store.images import ImageInfo, ImageStore

REFUSED_WINDOW_S = 24 * 3600
GOING = ("queued", "running")


@dataclass(frozen=True)
class FleetCounts:
    online: int
    offline: int
    refused_24h: int  # reports refused in the last REFUSED_WINDOW_S (coalesced events summed)


def fleet_counts(session: Session, online_since: float, now: float) -> FleetCounts:
    total = session.scalar(select(func.count()).select_from(Node)) or 0
    online = session.scalar(select(func.count()).where(Node.last_seen_at >= online_since)) or 0
    # the range on `at` walks ix_boot_events_at; a refused event holds how many reports
    # it coalesced (master.refusals), 1 when it does not say
    reports = func.coalesce(BootEvent.detail["count"].as_integer(), 1)
    refused = session.scalar(
        select(func.coalesce(func.sum(reports), 0)).where(
            BootEvent.at >= now - REFUSED_WINDOW_S, BootEvent.kind == "refused"
        )
    )
    return FleetCounts(online, total - online, int(refused or 0))


def going_builds(session: Session) -> list[Build]:
    """The builds queued or running, in queue order."""
    return list(session.scalars(select(Build).where(Build.state.in_(GOING)).order_by(Build.seq)))


def last_events(session: Session, limit: int) -> list[BootEvent]:
    """The newest boot events, newest first."""
    return list(session.scalars(select(BootEvent).order_by(BootEvent.at.desc()).limit(limit)))


def active_image(store: ImageStore) -> ImageInfo | None:
    active_id = store.active_id()
    return next((i for i in store.list() if i.id == active_id), None)
