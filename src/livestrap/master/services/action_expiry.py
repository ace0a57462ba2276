"""Queued actions that no node came for end as `expired`.

Without an end, `nodes reboot --all` would still reboot a node that was offline for a
week the moment it returns, long after the operator meant it. The periodic sweep (with
the lost sweep, every 30 s) expires what was queued more than `action_queue_ttl_s` ago
and never delivered: a compare-and-set per row, so a heartbeat that takes the action
in the same moment wins and the action runs, once.
"""

from __future__ import annotations

import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from livestrap.master.db import rows_changed
from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.models import NodeAction

EXPIRE_BATCH = 500  # actions one sweep ends


def sweep_expired(
    session: Session, ttl_s: float, now: float | None = None, history: History | None = None
) -> int:
    """queued -> expired for every action queued more than `ttl_s` ago; how many (at most
    EXPIRE_BATCH a call). Each one goes on its node's timeline as `action-expired`."""
    now = time.time() if now is None else now
    rows = session.execute(
        select(NodeAction.id, NodeAction.node_id, NodeAction.kind, NodeAction.created_at)
        .where(NodeAction.state == "queued", NodeAction.created_at < now - ttl_s)
        .limit(EXPIRE_BATCH)
    ).all()
    ended = 0
    for row in rows:
        error = f"not taken by its node within {round(ttl_s)} s of being queued"
        statement = (
            update(NodeAction)
            .where(NodeAction.id == row.id, NodeAction.state == "queued")
            .values(state="expired", finished_at=now, error=error)
            .execution_options(synchronize_session=False)
        )
        if rows_changed(session, statement) != 1:
            continue  # delivered (or cancelled) meanwhile
        ended += 1
        detail = {"action_id": row.id, "kind": row.kind,
                  "queued_s_ago": round(now - row.created_at, 1)}  # fmt: skip
        record_event(session, "action-expired", node_id=row.node_id, detail=detail, at=now,
                     history=history)  # fmt: skip
    return ended
