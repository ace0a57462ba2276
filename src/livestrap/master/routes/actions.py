"""Node actions: operators queue and read them (admin token); agents post their results
(the discovery token, on DiscoveryRoute: checked before the body is read, same rate
limit as the reports). The queue's rules are master.services.actions."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Query, Security
from fastapi import Path as PathParam

from livestrap.master.deps import AdminOnly, SessionDep, StateDep, discovery_bearer
from livestrap.master.routes.discovery import DiscoveryRoute
from livestrap.master.routes.nodes import NOT_FOUND, NodeRef
from livestrap.master.schemas.actions import (
    ActionRequest,
    ActionResult,
    ActionView,
    BulkAnswer,
    BulkRequest,
    ResultAnswer,
)
from livestrap.master.schemas.nodes import ErrorDetail
from livestrap.master.services import actions as service
from livestrap.master.services.action_select import selected_nodes
from livestrap.master.services.nodes import node_id as full_node_id

ActionRef = Annotated[str, PathParam(max_length=36, description="An action id.")]
QUEUE_FULL: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "The node's queue is full, or an id is ambiguous."}
}
NO_ACTION: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorDetail, "description": "No action with that id."}
}
router = APIRouter(
    tags=["actions"],
    dependencies=[AdminOnly],
    responses={401: {"model": ErrorDetail, "description": "Admin token missing or wrong."}},
)
agent_router = APIRouter(tags=["discovery"], route_class=DiscoveryRoute)


@router.post(
    "/nodes/{node_id}/actions",
    status_code=201,
    response_model=ActionView,
    responses={**NOT_FOUND, **QUEUE_FULL},
    summary="Queue an action for a node",
)
def queue_node_action(node_id: NodeRef, body: ActionRequest, session: SessionDep) -> ActionView:
    """The node's agent gets it with its next heartbeat (install, reinspect, reboot or
    poweroff; arguments are checked exactly: a 422 names the field)."""
    node = full_node_id(session, node_id)
    action = service.queue_action(session, node, body.kind, body.args.model_dump())
    return service.action_view(action)


@router.get(
    "/nodes/{node_id}/actions",
    response_model=list[ActionView],
    responses=NOT_FOUND,
    summary="The node's actions, newest first",
)
def list_node_actions(
    node_id: NodeRef,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ActionView]:
    node = full_node_id(session, node_id)
    return [service.action_view(a) for a in service.node_actions(session, node, limit)]


@router.post(
    "/actions",
    status_code=201,
    response_model=BulkAnswer,
    responses={
        400: {"model": ErrorDetail, "description": "The selector selects by nothing."},
        404: {"model": ErrorDetail, "description": "A node id or MAC the master does not know."},
        **QUEUE_FULL,
    },
    summary="Queue an action for every node a selector picks",
)
def queue_bulk_action(body: BulkRequest, session: SessionDep, state: StateDep) -> BulkAnswer:
    """All of the selector's conditions must hold (`all: true` alone: every node); every
    action is queued, or none (409 when a node's queue is full)."""
    cfg = state.settings
    nodes = selected_nodes(session, body.selector, cfg.heartbeat_s, cfg.offline_after, time.time())
    queued = service.queue_many(session, nodes, body.kind, body.args.model_dump())
    return BulkAnswer(queued=[service.action_view(a) for a in queued], count=len(queued))


@router.get("/actions/{action_id}", response_model=ActionView, responses=NO_ACTION,
            summary="Show an action and its result")  # fmt: skip
def get_action(action_id: ActionRef, session: SessionDep) -> ActionView:
    return service.action_view(service.find_action(session, action_id))


CANCEL_REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorDetail, "description": "Delivered already, or ended."}
}


@router.delete("/actions/{action_id}", response_model=ActionView,
               responses={**NO_ACTION, **CANCEL_REFUSED},
               summary="Cancel a queued action")  # fmt: skip
def cancel_action(action_id: ActionRef, session: SessionDep) -> ActionView:
    return service.action_view(service.cancel(session, action_id))


@agent_router.post(
    "/discovery/actions/{action_id}/result",
    response_model=ResultAnswer,
    responses={
        401: {"model": ErrorDetail, "description": "Missing or wrong discovery token."},
        404: {"model": ErrorDetail, "description": "No such action for that node_id."},
        409: {"model": ErrorDetail, "description": "The action is not delivered (ended, lost)."},
        413: {"model": ErrorDetail, "description": "Body over the result cap."},
        429: {"model": ErrorDetail, "description": "Too many requests from this address."},
    },
    summary="Agent: the result of an action it ran",
    dependencies=[Security(discovery_bearer)],  # declared; DiscoveryRoute does the check
)
def post_action_result(
    action_id: ActionRef, body: ActionResult, session: SessionDep, state: StateDep
) -> ResultAnswer:
    """delivered -> succeeded | failed, on the node's timeline. 409 for a result that comes
    too late (the action was lost) or twice: the agent drops it."""
    action = service.record_result(session, action_id, body, history=state.guards.history)
    return ResultAnswer(state=action.state)  # type: ignore[arg-type]
