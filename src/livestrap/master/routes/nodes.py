"""/api/v1/nodes: the inventory as operators see it (admin token).

The node list and timelines come a page at a time (`limit`, at most MAX_PAGE, and
`after`); when there is more, the answer carries `X-Next-Cursor` (the `after` of the next
page) and a `Link: <...>; rel="next"` header. The body stays a plain JSON list.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from fastapi import Path as PathParam

from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.events import normalize_mac
from livestrap.master.queries import MAX_PAGE, BadCursor, parse_cursor
from livestrap.master.schemas.bounds import Text
from livestrap.master.schemas.nodes import (
    ErrorDetail,
    NodeDetail,
    NodeStatus,
    NodeSummary,
    TimelineEvent,
)
from livestrap.master.schemas.rules import NodePatch
from livestrap.master.services import node_edit
from livestrap.master.services import nodes as service
from livestrap.master.services.drivers import with_driver_gaps

NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No node with that id (or id prefix)."},
    409: {"model": ErrorDetail, "description": "The id prefix matches several nodes."},
}
NODE_ID = "A node id, or a unique prefix of one (as git takes commit prefixes)."
NodeRef = Annotated[str, PathParam(description=NODE_ID)]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE, description=f"Rows per page (at most {MAX_PAGE}).")]
After = Annotated[
    Text | None,
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


@router.get("", response_model=list[NodeSummary], responses=PAGED, summary="List nodes")
def list_nodes(
    session: SessionDep,
    state: StateDep,
    request: Request,
    response: Response,
    status: Annotated[NodeStatus | None, Query(description="Only online or offline nodes.")] = None,
    mac: Annotated[
        Text | None, Query(max_length=64, description="Only the node owning this MAC.")
    ] = None,
    tag: Annotated[
        Text | None, Query(max_length=63, description="Only nodes with this tag.")
    ] = None,
    name: Annotated[
        Text | None, Query(max_length=63, description="Only the node of this name.")
    ] = None,
    limit: Limit = MAX_PAGE,
    after: After = None,
) -> list[NodeSummary]:
    wanted = None
    if mac is not None:
        wanted = normalize_mac(mac)
        if wanted is None:
            raise HTTPException(status_code=422, detail=f"not a MAC address: {mac!r}")
    cutoff = service.online_since(state.settings)
    nodes, next_cursor = service.list_nodes(
        session, cutoff, status, wanted, _after(after), limit, tag=tag, name=name
    )
    _next_page(request, response, next_cursor)
    return nodes


@router.get("/{node_id}", response_model=NodeDetail, responses=NOT_FOUND, summary="Show a node")
def show_node(node_id: NodeRef, session: SessionDep, state: StateDep) -> NodeDetail:
    detail = service.show_node(session, node_id, service.online_since(state.settings))
    return with_driver_gaps(detail, state.store)


@router.patch(
    "/{node_id}",
    response_model=NodeDetail,
    responses={
        **NOT_FOUND,
        409: {"model": ErrorDetail, "description": "The name is another node's (or the id "
              "prefix matches several nodes)."},
    },
    summary="Name or tag a node",
)  # fmt: skip
def patch_node(
    node_id: NodeRef, session: SessionDep, state: StateDep, body: Annotated[NodePatch, Body()]
) -> NodeDetail:
    """Set `name` (a DNS label, unique; `null` clears it) and/or `tags` (the whole list:
    it replaces the node's tags). A field left out is left alone."""
    detail = node_edit.patch_node(session, node_id, body, service.online_since(state.settings))
    return with_driver_gaps(detail, state.store)


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
    found = service.node_id(session, node_id)  # a 404 before a bad cursor's 422
    events, next_cursor = service.node_timeline(session, found, _after(after, int_id=True), limit)
    _next_page(request, response, next_cursor)
    return events


@router.delete(
    "/{node_id}",
    status_code=204,
    response_class=Response,
    responses=NOT_FOUND,
    summary="Forget a node",
)
def delete_node(node_id: NodeRef, session: SessionDep) -> Response:
    """Forget a node and its MACs; its boot events stay, unattached. It re-registers on boot.

    Committed before the 204 leaves (SessionDep's scope), so a client's next request
    never sees the node again."""
    service.forget_node(session, node_id)
    return Response(status_code=204)
