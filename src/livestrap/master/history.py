"""Bounded boot history: the newest `keep` events per node (and per MAC or address of the
events that belong to no node yet), and at most `unattached` node-less events in all.

Why: /boot is open, so anyone can add events to any MAC's timeline; without a bound one
client fills the disk and buries a node's real history. Pruning is cheap because it is
rare: a key is pruned after every `keep // 10` events recorded for it (so a timeline holds
up to 10 % more than `keep` between prunes), with one indexed DELETE, in the transaction
that recorded the event. Counts live in memory (bounded); after a restart a key is pruned
once it has had that many new events.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from livestrap.master.models import BootEvent

MAX_KEYS = 10_000


class History:
    """`recorded(session, event)` after each event insert; prunes when a key is due."""

    def __init__(self, keep: int, unattached: int) -> None:
        self.keep = keep
        self.unattached = unattached
        self._every = max(1, keep // 10)
        self._every_unattached = max(1, unattached // 100)
        self._counts: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._unattached_count = 0
        self._lock = threading.Lock()

    def recorded(self, session: Session, event: BootEvent) -> None:
        key = _key(event)
        due_key = due_all = False
        with self._lock:
            if self.keep > 0 and key is not None:
                count = self._counts.pop(key, 0) + 1
                due_key = count >= self._every
                self._counts[key] = 0 if due_key else count
                while len(self._counts) > MAX_KEYS:
                    self._counts.popitem(last=False)
            if self.unattached > 0 and event.node_id is None:
                self._unattached_count += 1
                due_all = self._unattached_count >= self._every_unattached
                if due_all:
                    self._unattached_count = 0
        if due_key and key is not None:
            prune(session, _where(key), self.keep)
        if due_all:
            prune(session, [BootEvent.node_id.is_(None)], self.unattached)


def _key(event: BootEvent) -> tuple[str, str] | None:
    if event.node_id:
        return ("node", event.node_id)
    if event.mac:
        return ("mac", event.mac)
    if event.ip:
        return ("ip", event.ip)
    return None


def _where(key: tuple[str, str]) -> list[ColumnElement[bool]]:
    kind, value = key
    if kind == "node":
        return [BootEvent.node_id == value]
    if kind == "mac":
        return [BootEvent.node_id.is_(None), BootEvent.mac == value]
    return [BootEvent.node_id.is_(None), BootEvent.mac.is_(None), BootEvent.ip == value]


def prune(session: Session, where: list[ColumnElement[bool]], keep: int) -> Any:
    """Delete all but the newest `keep` events matching `where` (newest: highest id)."""
    oldest_kept = (
        select(BootEvent.id)
        .where(*where)
        .order_by(BootEvent.id.desc())
        .offset(keep - 1)
        .limit(1)
        .scalar_subquery()
    )
    return session.execute(
        delete(BootEvent).where(*where, BootEvent.id < oldest_kept),
        execution_options={"synchronize_session": False},
    )
