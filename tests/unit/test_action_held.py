"""services.actions: what the agent's `open_actions` changes about when an action is lost."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from livestrap.master.db import Database
from livestrap.master.models import Node
from livestrap.master.services import actions

pytestmark = pytest.mark.unit

T0 = 1_000_000.0
TIMEOUT = 900.0


@pytest.fixture
def queued(db: Database) -> Iterator[tuple[str, str]]:
    """Node n1 with two actions queued, the first delivered at T0: (first, second)."""
    with db.session() as session:
        session.add(Node(id="n1", facts={}, failures=[], heartbeat_s=30, first_seen_at=T0,
                         last_seen_at=T0, boots=1))  # fmt: skip
        session.flush()
        first = actions.queue_action(session, "n1", "install", {"packages": [{"name": "htop"}]})
        second = actions.queue_action(session, "n1", "reinspect", {})
        ids = (first.id, second.id)
    with db.session() as session:
        assert [o.id for o in actions.claim(session, "n1", TIMEOUT, now=T0)] == [ids[0]]
    yield ids
    actions.finished_hook.clear()


def claim(db: Database, at: float, held: tuple[str, ...] | None) -> list[str]:
    with db.session() as session:
        return [o.id for o in actions.claim(session, "n1", TIMEOUT, now=at, open_actions=held)]


def state(db: Database, action_id: str) -> tuple[str, str | None]:
    with db.session() as session:
        row = actions.find_action(session, action_id)
        return row.state, row.error


def test_a_held_action_is_never_lost_while_listed(db: Database, queued: tuple[str, str]) -> None:
    first, _ = queued
    for at in (T0 + 30, T0 + TIMEOUT + 1, T0 + 3 * TIMEOUT):
        assert claim(db, at, (first,)) == []  # nothing new handed out meanwhile
    assert state(db, first) == ("delivered", None)


def test_the_hold_has_a_cap(db: Database, queued: tuple[str, str]) -> None:
    first, second = queued
    assert claim(db, T0 + actions.HOLD_CAP * TIMEOUT + 1, (first,)) == [second]
    assert state(db, first) == ("lost", "still not done 3601 s after delivery (the cap is 3600 s)")


def test_an_unlisted_action_is_lost_after_the_grace(db: Database, queued: tuple[str, str]) -> None:
    first, second = queued
    assert claim(db, T0 + 2, ()) == []  # a report that crossed the answer in flight
    assert state(db, first) == ("delivered", None)
    assert claim(db, T0 + actions.HANDOVER_GRACE_S + 1, ("0b6e8f6c-0000",)) == [second]
    assert state(db, first) == ("lost", actions.NOT_HELD)
    assert claim(db, T0 + 10, (second,)) == []  # and the next one is held in turn


def test_an_old_agent_is_judged_by_the_timeout(db: Database, queued: tuple[str, str]) -> None:
    first, second = queued
    assert claim(db, T0 + TIMEOUT, None) == []
    assert claim(db, T0 + TIMEOUT + 1, None) == [second]
    assert state(db, first) == ("lost", "no result 901 s after delivery")


def test_the_sweep_spares_a_node_that_reports(db: Database, queued: tuple[str, str]) -> None:
    first, _ = queued
    with db.session() as session:
        session.get(Node, "n1").last_seen_at = T0 + 2 * TIMEOUT  # type: ignore[union-attr]
    with db.session() as session:
        assert actions.sweep_lost(session, TIMEOUT, now=T0 + 2 * TIMEOUT + 30) == 0
        assert actions.sweep_lost(session, TIMEOUT, now=T0 + 3 * TIMEOUT + 1) == 1  # gone quiet
    assert state(db, first)[0] == "lost"


def test_the_sweep_keeps_the_cap(db: Database, queued: tuple[str, str]) -> None:
    first, _ = queued
    late = T0 + actions.HOLD_CAP * TIMEOUT + 1
    with db.session() as session:
        session.get(Node, "n1").last_seen_at = late  # type: ignore[union-attr]
    with db.session() as session:
        assert actions.sweep_lost(session, TIMEOUT, now=late) == 1
    assert state(db, first)[0] == "lost"
