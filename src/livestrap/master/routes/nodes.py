"""/api/v1/nodes: the inventory as operators see it (admin token).

The node list and timelines come a page at a time (`limit`, at most MAX_PAGE, and
`after`); when there is more, the answer carries `X-Next-Cursor` (the `after` of the next
page) and a `Link: <...>; rel="next"` header. The body stays a plain JSON list.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from sqlalchemy.orm import Session

from livestrap.errors import NotFoundError
from livestrap.master import inventory
from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.events import normalize_mac
from livestrap.master.lookup import full_id
from livestrap.master.models import Node
from livestrap.master.queries import MAX_PAGE, BadCursor, cursor, parse_cursor
from livestrap.master.schemas.nodes import (
    ErrorDetail,
    NodeDetail,
    NodeStatus,
    NodeSummary,
    TimelineEvent,
)

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No node with that id (or id prefix)."},
    409: {"model": ErrorDetail, "description": "The id prefix matches several nodes."},
}
NODE_ID = "A node id, or a unique prefix of one (as git takes commit prefixes)."
NodeRef = Annotated[str, PathParam(description=NODE_ID)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Rows per page (at most {MAX_PAGE}).")]
After = Annotated[
    str | None,
    Query(max_length=100, description="The X-Next-Cursor of the previous page."),
]
PAGED: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "One page; X-Next-Cursor and Link (rel=next) when there is more.",
        "headers": {"X-Next-Cursor": {"schema": {"type": "string"}}},
    }
}
router = APIRouter(
    prefix="/nodes",
    tags=["nodes"],
    dependencies=[AdminOnly],
    responses={401: {"model": ErrorDetail, "description": "Admin token missing or wrong."}},
)


def utc(at: float) -> datetime:
    """Epoch seconds (the tables) -> aware UTC datetime (ISO 8601 in the answers)."""
    return datetime.fromtimestamp(at, UTC)


def _cutoff(state: StateDep) -> float:
    cfg = state.settings
    return inventory.online_cutoff(time.time(), cfg.heartbeat_s, cfg.offline_after)


def _node_id(session: Session, ref: str) -> str:
    """The node's full id from an id or a unique id prefix (409 when several match)."""
    node_id = full_id(session, Node.id, "node", ref)
    if node_id is None:
        raise NotFoundError(f"no node {ref!r}")
    return node_id


def _after(after: str | None, int_id: bool = False) -> tuple[float, Any] | None:
    if after is None:
        return None
    try:
        return parse_cursor(after, int_id)
    except BadCursor as err:
        raise HTTPException(status_code=422, detail=str(err)) from None


def _next_page(request: Request, response: Response, next_cursor: str | None) -> None:
    if next_cursor is not None:
        response.headers["X-Next-Cursor"] = next_cursor
        response.headers["Link"] = (
            f'<{request.url.include_query_params(after=next_cursor)}>; rel="next"'
        )


def _get(session: Session, ref: str) -> Node:
    node = session.get(Node, ref) or session.get(Node, _node_id(session, ref))
    if node is None:  # deleted in between
        raise NotFoundError(f"no node {ref!r}")
    return node


@router.get("", response_model=list[NodeSummary], responses=PAGED, summary="List nodes")
def list_nodes(
    session: SessionDep,
    state: StateDep,
    request: Request,
    response: Response,
    status: Annotated[NodeStatus | None, Query(description="Only online or offline nodes.")] = None,
    mac: Annotated[str | None, Query(description="Only the node owning this MAC.")] = None,
    limit: Limit = MAX_PAGE,
    after: After = None,
) -> list[NodeSummary]:
    wanted = None
    if mac is not None:
        wanted = normalize_mac(mac)
        if wanted is None:
            raise HTTPException(status_code=422, detail=f"not a MAC address: {mac!r}")
    cutoff = _cutoff(state)
    query = inventory.node_query(cutoff, status, wanted, _after(after)).limit(limit + 1)
    rows = list(session.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    _next_page(request, response, cursor(rows[-1].first_seen_at, rows[-1].id) if more else None)
    return [
        NodeSummary(
            id=row.id,
            status=inventory.status_of(row.last_seen_at, cutoff),
            system_uuid=row.system_uuid,
            vendor=row.vendor,
            product=row.product,
            serial=row.serial,
            boot_mac=row.boot_mac,
            last_ip=row.last_ip,
            image_id=row.image_id,
            agent_version=row.agent_version,
            boots=row.boots,
            first_seen_at=utc(row.first_seen_at),
            last_seen_at=utc(row.last_seen_at),
        )
        for row in rows
    ]


@router.get("/{node_id}", response_model=NodeDetail, responses=NOT_FOUND, summary="One node")
def show_node(node_id: NodeRef, session: SessionDep, state: StateDep) -> NodeDetail:
    node = _get(session, node_id)
    facts = node.facts if isinstance(node.facts, dict) else {}
    system = facts.get("system")
    system = system if isinstance(system, dict) else {}
    return NodeDetail(
        id=node.id,
        status=inventory.status_of(node.last_seen_at, _cutoff(state)),
        system_uuid=node.system_uuid,
        vendor=system.get("vendor"),
        product=system.get("product"),
        serial=system.get("serial"),
        boot_mac=node.boot_mac,
        last_ip=node.last_ip,
        image_id=node.image_id,
        agent_version=node.agent_version,
        boots=node.boots,
        first_seen_at=utc(node.first_seen_at),
        last_seen_at=utc(node.last_seen_at),
        macs=sorted(inventory.node_macs(session, node.id)),
        heartbeat_s=node.heartbeat_s,
        facts_hash=node.facts_hash,
        facts=facts,
        failures=list(node.failures or []),
    )


@router.get(
    "/{node_id}/timeline",
    response_model=list[TimelineEvent],
    responses={**NOT_FOUND, **PAGED},
    summary="The node's boot events, oldest first",
)
def node_timeline(
    node_id: NodeRef,
    session: SessionDep,
    state: StateDep,
    request: Request,
    response: Response,
    limit: Limit = MAX_PAGE,
    after: After = None,
) -> list[TimelineEvent]:
    state.guards.flush_logged()  # the counted refusals and suppressed events, up to now
    node_id = _node_id(session, node_id)
    macs = inventory.node_macs(session, node_id)
    events = inventory.timeline(session, node_id, macs, _after(after, int_id=True), limit + 1)
    more = len(events) > limit
    events = events[:limit]
    _next_page(request, response, cursor(events[-1].at, events[-1].id) if more else None)
    return [
        TimelineEvent(
            kind=e.kind,
            at=utc(e.at),
            mac=e.mac,
            ip=e.ip,
            image_id=e.image_id,
            detail=e.detail or {},
        )
        for e in events
    ]


@router.delete(
    "/{node_id}", status_code=204, response_class=Response, responses=NOT_FOUND, summary="Forget"
)
def delete_node(node_id: NodeRef, state: StateDep) -> Response:
    """Forget a node and its MACs; its boot events stay, unattached. It re-registers on boot.

    Its own transaction, committed before the 204 leaves: SessionDep commits only after
    the response is sent, so a client's next request could still see the node.
    """
    with state.db.session() as session:
        session.delete(_get(session, node_id))  # the database drops its MACs (ON DELETE CASCADE)
    return Response(status_code=204)
