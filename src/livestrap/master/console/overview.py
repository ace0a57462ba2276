"""/ui/: the fleet at a glance — the active image, the builds going, the nodes by status,
the reports refused in the last day, the last boot events (services.overview's queries)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import Response

from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.render import page
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.services import overview as service
from livestrap.master.services.nodes import online_since

RECENT_EVENTS = 10
router = APIRouter(prefix=PREFIX, dependencies=CONSOLE_GUARDS, include_in_schema=False)


@router.get("/")
def overview(request: Request, login: LoginDep, db: SessionDep, state: StateDep) -> Response:
    counts = service.fleet_counts(db, online_since(state.settings), time.time())
    return page(
        request, "overview.html", login, title="Overview",
        active=service.active_image(state.store), builds=service.going_builds(db),
        counts={"online": counts.online, "offline": counts.offline},
        refused=counts.refused_24h, events=service.last_events(db, RECENT_EVENTS),
    )  # fmt: skip
