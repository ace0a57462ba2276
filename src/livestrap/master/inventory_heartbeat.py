"""A report without facts: the node is alive. The usual one, of an online node, is one
UPDATE; one of a node that had gone silent also leaves `heartbeat-resumed` on its
timeline (master.inventory applies both kinds of report)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.inventory_rules import Outcome, Report, online_cutoff
from livestrap.master.models import Node


def heartbeat(
    session: Session,
    report: Report,
    ip: str | None,
    heartbeat_s: int,
    offline_after: int,
    now: float | None = None,
    history: History | None = None,
) -> Outcome:
    """A report without facts: note that the node is alive; ask for facts if needed."""
    now = time.time() if now is None else now
    if report.node_id is None:
        return Outcome("", created=False, facts_required=True)
    values: dict[str, Any] = {"last_seen_at": now, "last_ip": ip, "heartbeat_s": heartbeat_s}
    if report.image_id is not None:
        values["image_id"] = report.image_id
    cutoff = online_cutoff(now, heartbeat_s, offline_after)
    # The usual heartbeat, of a node that is online, is this one statement.
    online = session.execute(
        update(Node)
        .where(Node.id == report.node_id, Node.last_seen_at >= cutoff)
        .values(**values)
        .returning(Node.facts_hash),
        execution_options={"synchronize_session": False},
    ).first()
    if online is not None:
        return Outcome(report.node_id, created=False, facts_required=_stale(report, online[0]))
    row = session.execute(
        select(Node.facts_hash, Node.last_seen_at).where(Node.id == report.node_id)
    ).first()
    if row is None:  # deleted, or another master's id: the facts will make a node again
        return Outcome(report.node_id, created=False, facts_required=True)
    session.execute(
        update(Node).where(Node.id == report.node_id).values(**values),
        execution_options={"synchronize_session": False},
    )
    if row.last_seen_at < cutoff:
        silent = {"silent_s": round(now - row.last_seen_at, 1)}
        record_event(session, "heartbeat-resumed", mac=report.boot_mac, ip=ip,
                     node_id=report.node_id, image_id=report.image_id, detail=silent, at=now,
                     history=history)  # fmt: skip
    return Outcome(report.node_id, created=False, facts_required=_stale(report, row.facts_hash))


def _stale(report: Report, stored_hash: str | None) -> bool:
    """Whether the agent's facts differ from the ones the master keeps."""
    return report.facts_hash is not None and report.facts_hash != stored_hash
