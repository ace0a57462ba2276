"""The node action queue: queued -> delivered -> succeeded | failed, delivered -> lost,
queued -> cancelled, queued -> expired (action_expiry).

Pull, never push: an action reaches its node in the answer to a heartbeat, and it is
marked `delivered` in the transaction that writes that answer (`claim`), so a master
that restarts hands it out again never, and one that crashes before the commit never
handed it out. A node has one action delivered at a time; the next goes out once that
one has a result or was lost. A lost action is never run again. When an action is lost:

- The agent lists the actions it holds (`open_actions`: running, queued on the node, or
  its result not yet accepted) in every report. A delivered action it lists is not lost,
  however long it runs, until HOLD_CAP x `action_timeout_s` after delivery (so a stuck
  agent cannot hold the node's queue forever). One it does not list, delivered more than
  HANDOVER_GRACE_S ago (a report that crossed the answer carrying it does not count), is
  lost at once, and the next queued one goes out in the same answer.
- An agent older than the field (`open_actions` absent): lost `action_timeout_s` after
  delivery, as its node's reports go by.
- The periodic sweep, for nodes that stopped reporting: lost `action_timeout_s` after
  delivery once the node was also not seen for `action_timeout_s` (a node that reports
  is judged by `claim`, above), or in any case past the hold cap.

Every step goes on the node's timeline; `finished_hook` runs in the same transaction when an
action ends (succeeded, failed or lost), for webhooks and rules.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import bindparam, case, func, or_, select, update
from sqlalchemy.orm import Session

from livestrap.errors import ConflictError, NotFoundError
from livestrap.master.db import Database, rows_changed
from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.models import Node, NodeAction
from livestrap.master.schemas.actions import (
    OPEN_STATES,
    ActionOrder,
    ActionResult,
    ActionView,
    checked_args,
)
from livestrap.master.services.action_expiry import sweep_expired
from livestrap.master.services.convert import utc

MAX_OPEN_PER_NODE = 32  # queued + delivered: a stuck node's queue does not grow forever
MAX_ORDERS = 8  # what one heartbeat probe reads; it hands out one
LOST_BATCH = 500  # lost actions one sweep ends
EVENT_TAIL_CHARS = 1024  # of the output tail, on the timeline
SWEEP_S = 30.0  # how often the lost sweep looks at every node's delivered actions
HOLD_CAP = 4  # x action_timeout_s: the longest an agent holds an action it still lists
HANDOVER_GRACE_S = 5.0  # a report sent before the answer that carried the action arrived
NOT_HELD = "the agent does not hold it: the answer that carried it was lost, or the agent restarted"

finished_hook: list[Callable[[Session, NodeAction], None]] = []

# The heartbeat's probe, built once: making a statement costs more than running it
# (~0.5 ms against ~0.1 ms on SQLite). The IN is two comparisons: an expanding IN is
# rendered again at every execution.
_T = NodeAction.__table__
_OPEN_OF_NODE = (
    select(_T.c.id, _T.c.state, _T.c.kind, _T.c.args, _T.c.delivered_at)
    .where(
        _T.c.node_id == bindparam("node_id"), or_(_T.c.state == "queued", _T.c.state == "delivered")
    )
    .order_by(_T.c.seq, _T.c.created_at)
    .limit(MAX_ORDERS)
)


class UnknownNode(NotFoundError, ValueError):
    """queue_action's node does not exist (404 through the API)."""


class QueueFull(ConflictError, ValueError):
    """The node has MAX_OPEN_PER_NODE actions queued or delivered already (409)."""


def _next_seqs(session: Session, node_ids: list[str]) -> dict[str, tuple[int, int]]:
    """node id -> (its highest seq, its open actions), for the nodes that have any."""
    found: dict[str, tuple[int, int]] = {}
    open_ = func.sum(case((NodeAction.state.in_(OPEN_STATES), 1), else_=0))
    for start in range(0, len(node_ids), 500):
        chunk = node_ids[start : start + 500]
        rows = session.execute(
            select(NodeAction.node_id, func.max(NodeAction.seq), open_)
            .where(NodeAction.node_id.in_(chunk))
            .group_by(NodeAction.node_id)
        )
        found.update({node: (top or 0, int(count or 0)) for node, top, count in rows})
    return found


def queue_many(
    session: Session,
    node_ids: Iterable[str],
    kind: str,
    args: dict[str, Any],
    requested_by: str = "api",
    now: float | None = None,
) -> list[NodeAction]:
    """One action for each node (ids as stored: the callers resolve them). All or none:
    QueueFull when a node's queue is full, and a ValueError naming the field for a bad
    kind or arguments."""
    clean = checked_args(kind, args)
    now = time.time() if now is None else now
    ids = list(dict.fromkeys(node_ids))
    seqs = _next_seqs(session, ids)
    full = [n for n in ids if seqs.get(n, (0, 0))[1] >= MAX_OPEN_PER_NODE]
    if full:
        raise QueueFull(
            f"node {full[0]} has {MAX_OPEN_PER_NODE} actions queued or running already"
            + (f" (and {len(full) - 1} more nodes)" if len(full) > 1 else "")
        )
    actions = [
        NodeAction(
            id=str(uuid.uuid4()),
            node_id=node_id,
            seq=seqs.get(node_id, (0, 0))[0] + 1,
            kind=kind,
            args=clean,
            state="queued",
            requested_by=requested_by[:64],
            created_at=now,
        )
        for node_id in ids
    ]
    session.add_all(actions)
    session.flush()
    return actions


def queue_action(
    session: Session,
    node_id: str,
    kind: str,
    args: dict[str, Any],
    requested_by: str = "api",
) -> NodeAction:
    """Queue one action for the node of id `node_id`; it goes out with a heartbeat.
    ValueError (UnknownNode, QueueFull, pydantic's) when it cannot be."""
    checked_args(kind, args)  # a bad argument is said before an unknown node
    if session.get(Node, node_id) is None:
        raise UnknownNode(f"no node {node_id!r}")
    return queue_many(session, [node_id], kind, args, requested_by)[0]


def _move(session: Session, action_id: str, was: str, **values: Any) -> bool:
    """A compare-and-set: the action goes from state `was` to `values` only when it still
    is in `was` (another master, a late result or a cancel may have moved it first)."""
    statement = (
        update(NodeAction)
        .where(NodeAction.id == action_id, NodeAction.state == was)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return rows_changed(session, statement) == 1


def _event(session: Session, kind: str, action_id: str, node_id: str, detail: dict[str, Any],
           now: float, history: History | None) -> None:  # fmt: skip
    record_event(
        session,
        kind,
        node_id=node_id,
        detail={"action_id": action_id, **detail},
        at=now,
        history=history,
    )


def _finished(session: Session, action_id: str) -> None:
    """The hooks, with the action as it is now (its row reloaded)."""
    if not finished_hook:
        return
    action = session.get(NodeAction, action_id, populate_existing=True)
    if action is not None:
        for hook in list(finished_hook):
            hook(session, action)


def _lose(session: Session, action_id: str, node_id: str, kind: str, delivered_at: float,
          now: float, history: History | None, error: str | None = None) -> bool:  # fmt: skip
    """delivered -> lost, when it still is delivered (another master may have won)."""
    error = error or f"no result {round(now - delivered_at)} s after delivery"
    lost = _move(session, action_id, "delivered", state="lost", finished_at=now, error=error)
    if lost:
        _event(
            session,
            "action-lost",
            action_id,
            node_id,
            {"kind": kind, "delivered_s_ago": round(now - delivered_at, 1)},
            now,
            history,
        )
        _finished(session, action_id)
    return bool(lost)


def _still_out(age: float, action_id: str, timeout_s: float,
               open_actions: tuple[str, ...] | None) -> tuple[bool, str | None]:  # fmt: skip
    """(the node is at it, else why it is lost) for a delivered action `age` s old."""
    if open_actions is None:  # an older agent: only the timeout tells
        return age <= timeout_s, None
    if action_id in open_actions:
        cap = HOLD_CAP * timeout_s
        return age <= cap, f"still not done {round(age)} s after delivery (the cap is {cap:.0f} s)"
    return age <= HANDOVER_GRACE_S, NOT_HELD


def claim(
    session: Session,
    node_id: str,
    timeout_s: float,
    now: float | None = None,
    history: History | None = None,
    open_actions: tuple[str, ...] | None = None,
) -> list[ActionOrder]:
    """What the node's heartbeat answer carries: its next queued action, now marked
    delivered (in the caller's transaction), unless one is delivered and not yet done.
    A delivered one is lost first when the report says so (`open_actions`, see the
    module docstring). One indexed probe, that usually finds nothing; `open_actions`
    adds no query."""
    now = time.time() if now is None else now
    rows = session.execute(_OPEN_OF_NODE, {"node_id": node_id}).all()
    if not rows:
        return []
    for row in rows:
        if row.state != "delivered":
            continue
        delivered_at = row.delivered_at or 0.0
        at_it, why = _still_out(now - delivered_at, row.id, timeout_s, open_actions)
        if at_it:
            return []  # the node is at it; the next one waits for its result
        _lose(session, row.id, node_id, row.kind, delivered_at, now, history, why)
    nxt = next((r for r in rows if r.state == "queued"), None)
    if nxt is None:
        return []
    handed = _move(session, nxt.id, "queued", state="delivered", delivered_at=now)
    if not handed:  # cancelled, or taken by another master, since the probe
        return []
    _event(
        session,
        "action-delivered",
        nxt.id,
        node_id,
        {"kind": nxt.kind, "args": nxt.args},
        now,
        history,
    )
    return [ActionOrder(id=nxt.id, kind=nxt.kind, args=nxt.args or {})]


def sweep_lost(
    session: Session, timeout_s: float, now: float | None = None, history: History | None = None
) -> int:
    """Every action delivered more than `timeout_s` ago whose node was not seen for as
    long either (or delivered past the hold cap), now lost; how many (at most LOST_BATCH
    a call). A node that reports has its actions judged by `claim`."""
    now = time.time() if now is None else now
    rows = session.execute(
        select(NodeAction.id, NodeAction.node_id, NodeAction.kind, NodeAction.delivered_at)
        .outerjoin(Node, Node.id == NodeAction.node_id)
        .where(
            NodeAction.state == "delivered",
            NodeAction.delivered_at < now - timeout_s,
            or_(
                Node.last_seen_at.is_(None),
                Node.last_seen_at < now - timeout_s,
                NodeAction.delivered_at < now - HOLD_CAP * timeout_s,
            ),
        )
        .limit(LOST_BATCH)
    ).all()
    return sum(
        _lose(session, r.id, r.node_id, r.kind, r.delivered_at or 0.0, now, history) for r in rows
    )


def find_action(session: Session, action_id: str) -> NodeAction:
    action = session.get(NodeAction, action_id)
    if action is None:
        raise NotFoundError(f"no action {action_id!r}")
    return action


def record_result(
    session: Session,
    action_id: str,
    result: ActionResult,
    now: float | None = None,
    history: History | None = None,
) -> NodeAction:
    """The agent's result: delivered -> succeeded | failed. NotFoundError (404) for an
    unknown action or one of another node; ConflictError (409) unless it is delivered
    (finished, lost or never handed out): the agent drops the result then."""
    now = time.time() if now is None else now
    action = session.get(NodeAction, action_id)
    if action is None or action.node_id != result.node_id:
        raise NotFoundError(f"no action {action_id!r} for node {result.node_id!r}")
    done = _move(session, action_id, "delivered", state=result.status, finished_at=now,
                 exit_code=result.exit_code, output_tail=result.output_tail,
                 took_s=result.took_s, error=result.error)  # fmt: skip
    session.refresh(action)
    if not done:
        raise ConflictError(f"action {action_id} is {action.state}, not delivered")
    detail: dict[str, Any] = {"kind": action.kind, "exit_code": result.exit_code,
                              "took_s": result.took_s,
                              "output_tail": result.output_tail[-EVENT_TAIL_CHARS:]}  # fmt: skip
    if result.error is not None:
        detail["error"] = result.error
    _event(session, f"action-{result.status}", action_id, action.node_id, detail, now, history)
    for hook in list(finished_hook):
        hook(session, action)
    return action


def cancel(session: Session, action_id: str, now: float | None = None) -> NodeAction:
    """queued -> cancelled; ConflictError (409) once it was delivered or has ended."""
    action = find_action(session, action_id)
    now = time.time() if now is None else now
    done = _move(session, action_id, "queued", state="cancelled", finished_at=now)
    session.refresh(action)
    if not done:
        raise ConflictError(f"action {action_id} is {action.state}: only a queued one cancels")
    return action


def node_actions(session: Session, node_id: str, limit: int = 100) -> list[NodeAction]:
    """The node's newest actions first."""
    query = (
        select(NodeAction)
        .where(NodeAction.node_id == node_id)
        .order_by(NodeAction.seq.desc(), NodeAction.created_at.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def action_view(action: NodeAction) -> ActionView:
    """The one mapper from a row to what the API answers."""
    return ActionView(
        id=action.id,
        node_id=action.node_id,
        kind=action.kind,
        args=action.args or {},
        state=action.state,  # type: ignore[arg-type]
        requested_by=action.requested_by,
        created_at=utc(action.created_at),
        delivered_at=None if action.delivered_at is None else utc(action.delivered_at),
        finished_at=None if action.finished_at is None else utc(action.finished_at),
        exit_code=action.exit_code,
        output_tail=action.output_tail,
        took_s=action.took_s,
        error=action.error,
    )


class LostSweep:
    """`sweep()` ends the lost actions of every node, at most every `every_s` (the
    guards' thread calls it every few seconds): a node that vanished sends no heartbeat
    that would end them in `claim`."""

    def __init__(self, db: Database, timeout_s: float, history: History | None = None,
                 every_s: float = SWEEP_S, queue_ttl_s: float | None = None) -> None:  # fmt: skip
        self.db = db
        self.timeout_s = timeout_s
        self.queue_ttl_s = queue_ttl_s  # and queued ones expire (action_expiry) after it
        self.history = history
        self.every_s = min(every_s, timeout_s / 2)
        self._last = -math.inf

    def sweep(self) -> int:
        now = time.monotonic()
        if now - self._last < self.every_s:
            return 0
        self._last = now
        with self.db.session() as session:
            ended = sweep_lost(session, self.timeout_s, history=self.history)
            if self.queue_ttl_s is not None:
                ended += sweep_expired(session, self.queue_ttl_s, history=self.history)
            return ended
