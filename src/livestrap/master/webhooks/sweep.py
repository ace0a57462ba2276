"""The dispatcher's periodic chores: announce nodes that went offline, forget old
deliveries.

node.offline without touching the heartbeat: a node goes offline when its last_seen_at
falls behind the online cutoff (inventory_rules.online_cutoff). The sweep keeps a cursor
(webhook_cursors, shared by every master of the database) and announces the nodes whose
last_seen_at lies in [cursor, cutoff), then moves the cursor to the cutoff with a
compare-and-set: each silence is announced once, by one master, and a node that comes
back and goes silent again is announced again. The window is an index range on
nodes.last_seen_at, so a sweep reads only the nodes that just went offline. The cutoff
uses the master's heartbeat_s (the one its nodes were told to keep).
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from livestrap.master.db import rows_changed
from livestrap.master.inventory_rules import online_cutoff
from livestrap.master.models import Node
from livestrap.master.webhooks.events import rfc3339
from livestrap.master.webhooks.outbox import PENDING, emit, subscribers
from livestrap.master.webhooks.tables import WebhookCursor, WebhookDelivery

OFFLINE = "node.offline"
BATCH = 500  # nodes announced per sweep at most; the rest in the next ones


def _window(session: Session, start: float, bound: float) -> tuple[list[Any], float]:
    """The nodes to announce in [start, bound), at most about BATCH, and where the next
    window starts (ties at the cut all go in this one)."""
    columns = (Node.id, Node.last_seen_at, Node.boot_mac, Node.last_ip)
    query = select(*columns).where(Node.last_seen_at >= start, Node.last_seen_at < bound)
    rows = list(session.execute(query.order_by(Node.last_seen_at).limit(BATCH + 1)))
    if len(rows) <= BATCH:
        return rows, bound
    cut = rows[BATCH].last_seen_at
    taken = [row for row in rows if row.last_seen_at < cut]
    if taken:
        return taken, cut
    # more than BATCH nodes last seen at the very same instant: all of them now
    same = list(session.execute(select(*columns).where(Node.last_seen_at == cut)))
    return same, math.nextafter(cut, math.inf)


def offline_sweep(session: Session, now: float, heartbeat_s: int, offline_after: int) -> int:
    """Announce the nodes that went offline since the last sweep; how many."""
    bound = online_cutoff(now, heartbeat_s, offline_after)
    cursor = session.get(WebhookCursor, OFFLINE)
    if cursor is None:  # the first sweep ever: the past is not news
        session.add(WebhookCursor(name=OFFLINE, value=bound))
        return 0
    start = cursor.value
    if bound <= start:
        return 0
    rows, end = _window(session, start, bound) if subscribers(session, OFFLINE) else ([], bound)
    cas = update(WebhookCursor).where(WebhookCursor.name == OFFLINE, WebhookCursor.value == start)
    if rows_changed(session, cas.values(value=end)) != 1:
        return 0  # another master swept this window
    for row in rows:
        data = {"node_id": row.id, "boot_mac": row.boot_mac, "last_ip": row.last_ip,
                "last_seen_at": rfc3339(row.last_seen_at),
                "silent_s": round(now - row.last_seen_at, 1)}  # fmt: skip
        emit(session, OFFLINE, row.id, data, at=now)
    return len(rows)


def prune(session: Session, now: float, keep_s: float) -> int:
    """Delete delivered and failed deliveries older than keep_s (0: keep them all)."""
    if keep_s <= 0:
        return 0
    old = delete(WebhookDelivery).where(
        WebhookDelivery.created_at < now - keep_s, WebhookDelivery.state != PENDING
    )
    return rows_changed(session, old)
