"""/ui/nodes: the fleet searched and paged on the server, and one node's page: its
hardware for reading (raw JSON behind a tab), its last boot as a picture, forgetting it.
HTTP and templates only: the reads and writes are master.services'."""

from __future__ import annotations

import json
import time
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from livestrap.errors import LivestrapError
from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.hardware import hardware
from livestrap.master.console.render import page
from livestrap.master.console.timeline import WIDTH, height, layout
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.errors import status_for
from livestrap.master.queries import BadCursor, parse_cursor
from livestrap.master.services import nodes as service
from livestrap.master.services.actions import action_view, node_actions
from livestrap.master.services.boot_timeline import boot_timeline
from livestrap.master.services.drivers import with_driver_gaps
from livestrap.master.services.node_search import NodeFilters, count_nodes, search_nodes

TIMELINE_EVENTS = 300  # the newest events read for the last boot's picture
ACTIONS_SHOWN = 20  # the node's newest actions on its page
MAX_REFUSALS = 20
FIELDS = ("status", "vendor", "product", "mac", "image", "serial", "name", "tag", "q")
router = APIRouter(prefix=PREFIX, dependencies=CONSOLE_GUARDS, include_in_schema=False)


def problem(request: Request, login: LoginDep, status: int, message: str) -> Response:
    """The page for a refusal (an unknown node, a bad filter): the message, not JSON."""
    return page(request, "nodes_problem.html", login, status_code=status, section="nodes",
                title="Nodes", message=message)  # fmt: skip


@router.get("/nodes")
def list_page(request: Request, login: LoginDep, db: SessionDep, state: StateDep) -> Response:
    given = {k: v for k, v in request.query_params.items() if k in FIELDS}
    try:
        filters = NodeFilters.model_validate(given)
        after_text = request.query_params.get("after") or None
        after = parse_cursor(after_text) if after_text else None
    except ValidationError as err:
        wrong = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        return problem(request, login, 422, f"Bad filter: {wrong}")
    except BadCursor as err:
        return problem(request, login, 422, str(err))
    cutoff = service.online_since(state.settings)
    found, next_cursor = search_nodes(db, cutoff, filters, after)
    return page(
        request, "nodes.html", login, title="Nodes", nodes=found, filters=given,
        next_url=f"{PREFIX}/nodes?{urlencode({**filters.active(), 'after': next_cursor})}"
        if next_cursor else None, first_url=f"{PREFIX}/nodes?{urlencode(filters.active())}"
        if after is not None else None,
        total=count_nodes(db, cutoff, filters),
    )  # fmt: skip


@router.get("/nodes/{node_id}")
def node_page(
    node_id: str, request: Request, login: LoginDep, db: SessionDep, state: StateDep
) -> Response:
    state.guards.flush_logged()  # the counted refusals, up to now
    try:
        node = service.show_node(db, node_id[:100], service.online_since(state.settings))
        node = with_driver_gaps(node, state.store)
    except LivestrapError as err:
        return problem(request, login, status_for(err), str(err))
    now = time.time()
    timeline = boot_timeline(service.recent_events(db, node.id, TIMELINE_EVENTS), now)
    bars = layout(timeline, now)
    return page(
        request, "node.html", login, section="nodes", node=node,
        title=f"Node {node.name or node.id[:8]}",
        hw=hardware(node.facts), raw=json.dumps(node.facts, indent=2, sort_keys=True),
        bars=bars, svg_width=WIDTH, svg_height=height(bars),
        refusals=timeline.refusals[-MAX_REFUSALS:], refusals_more=max(
            0, len(timeline.refusals) - MAX_REFUSALS),
        actions=[action_view(a) for a in node_actions(db, node.id, ACTIONS_SHOWN)],
    )  # fmt: skip


@router.post("/nodes/{node_id}/delete")
def delete_node(node_id: str, request: Request, login: LoginDep, db: SessionDep) -> Response:
    """Forget the node (as DELETE /api/v1/nodes/{id}); it re-registers when it boots."""
    try:
        service.forget_node(db, node_id[:100])
    except LivestrapError as err:
        return problem(request, login, status_for(err), str(err))
    return RedirectResponse(f"{PREFIX}/nodes", status_code=303)
