"""/ui/: the fleet at a glance — the active image, the builds going, the nodes by status,
the last boot events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select

from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.render import page
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.models import BootEvent, Build, Node
from livestrap.master.services.nodes import online_since

RECENT_EVENTS = 10
router = APIRouter(prefix=PREFIX, dependencies=CONSOLE_GUARDS, include_in_schema=False)


@router.get("/")
def overview(request: Request, login: LoginDep, db: SessionDep, state: StateDep) -> Response:
    cutoff = online_since(state.settings)
    total = db.scalar(select(func.count()).select_from(Node)) or 0
    online = db.scalar(select(func.count()).where(Node.last_seen_at >= cutoff)) or 0
    refused = db.scalar(select(func.count()).where(BootEvent.kind == "refused")) or 0
    going = list(
        db.scalars(select(Build).where(Build.state.in_(("queued", "running"))).order_by(Build.seq))
    )
    events = list(db.scalars(select(BootEvent).order_by(BootEvent.at.desc()).limit(RECENT_EVENTS)))
    active_id = state.store.active_id()
    active = next((i for i in state.store.list() if i.id == active_id), None)
    return page(
        request, "overview.html", login, title="Overview", active=active, builds=going,
        counts={"online": online, "offline": total - online, "refused reports": refused},
        events=events,
    )  # fmt: skip
