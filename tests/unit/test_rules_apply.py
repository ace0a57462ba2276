"""apply_rules and the dry run on a real database: order, accumulated tags, the first
free name wins, conflicts never rename the other node, actions through the queue."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import func, select

from livestrap.master.db import Database
from livestrap.master.models import BootEvent, Node, NodeTag
from livestrap.master.schemas.rules import RuleSet
from livestrap.master.services.node_tags import node_ids_with_tag, node_tags
from livestrap.master.services.rules import apply_rules, dry_run, save_rules

pytestmark = pytest.mark.unit


def add_node(db: Database, node_id: str, serial: str, memory: int = 128 * 2**30,
             name: str | None = None) -> None:  # fmt: skip
    facts = {"system": {"vendor": "Dell Inc.", "serial": serial}, "memory": {"total": memory}}
    with db.session() as session:
        session.add(Node(id=node_id, facts=facts, heartbeat_s=30, first_seen_at=1.0,
                         last_seen_at=1.0, boots=1, name=name))  # fmt: skip


def rules(*items: dict[str, Any]) -> RuleSet:
    return RuleSet.model_validate({"rules": list(items)})


BIG = {"name": "big", "if": "memory.total >= 64GiB", "add_tags": ["big"]}
NAMED = {"name": "by-serial", "if": "system.serial", "set_name": "{{ system.serial | lower }}",
         "add_tags": ["named"]}  # fmt: skip
RACK = {"name": "rack", "if": "true", "set_name": "r-{{ system.serial | lower }}"}
REBOOT = {"name": "reboot-small", "if": "memory.total < 64GiB",
          "action": {"kind": "reboot", "args": {}}}  # fmt: skip


class FakeQueue:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any], str]] = []

    def __call__(self, session: object, node_id: str, kind: str, args: dict[str, Any],
                 requested_by: str) -> object:  # fmt: skip
        self.calls.append((node_id, kind, args, requested_by))
        return object()


def run(db: Database, node_id: str, trigger: str = "register", queue: FakeQueue | None = None):  # type: ignore[no-untyped-def]
    with db.session() as session:
        node = session.get(Node, node_id)
        assert node is not None
        return apply_rules(session, node, trigger, queue)


def test_rules_run_in_order_tags_accumulate_and_the_first_name_wins(db: Database) -> None:
    add_node(db, "n1", "SN-1")
    with db.session() as session:
        save_rules(session, rules(BIG, NAMED, RACK))
    report = run(db, "n1")
    assert [(o.rule, o.matched, o.name, o.tags_added) for o in report.outcomes] == [
        ("big", True, None, ["big"]),
        ("by-serial", True, "sn-1", ["named"]),
        ("rack", True, None, []),  # named already: a later pattern does not rename
    ]
    with db.session() as session:
        node = session.get(Node, "n1")
        assert node is not None and node.name == "sn-1"
        assert node_tags(session, "n1") == ["big", "named"]
        assert list(session.scalars(node_ids_with_tag(session, "big"))) == ["n1"]
        kinds = list(session.scalars(select(BootEvent.kind).where(BootEvent.node_id == "n1")))
    assert kinds == ["rules-applied"]


def test_a_name_collision_never_renames_the_existing_node(db: Database) -> None:
    add_node(db, "old", "SN-2", name="sn-2")
    add_node(db, "new", "SN-2")
    with db.session() as session:
        save_rules(session, rules(NAMED, RACK))
    report = run(db, "new")
    assert report.outcomes[0].conflict == "sn-2" and report.outcomes[0].name is None
    assert report.outcomes[1].name == "r-sn-2"  # the next pattern gives a free name
    with db.session() as session:
        assert session.get(Node, "old").name == "sn-2"  # type: ignore[union-attr]
        assert session.get(Node, "new").name == "r-sn-2"  # type: ignore[union-attr]
        event = session.scalars(select(BootEvent).where(BootEvent.kind == "rule-conflict")).one()
    assert event.node_id == "new" and event.detail["name"] == "sn-2"


def test_actions_go_through_the_queue_and_never_loop_on_reinspect(db: Database) -> None:
    add_node(db, "small", "SN-3", memory=8 * 2**30)
    again = {"name": "again", "if": "true", "action": {"kind": "reinspect"}}
    with db.session() as session:
        save_rules(session, rules(REBOOT, again))
    queue = FakeQueue()
    report = run(db, "small", "register", queue)
    assert queue.calls == [("small", "reboot", {}, "rules"), ("small", "reinspect", {}, "rules")]
    assert [o.action for o in report.outcomes] == ["reboot", "reinspect"]
    queue = FakeQueue()
    report = run(db, "small", "reinspect", queue)
    assert queue.calls == [("small", "reboot", {}, "rules")]
    assert "loop" in report.outcomes[1].errors[0]
    report = run(db, "small", "register", None)  # no queue: said, not an error elsewhere
    assert report.outcomes[0].action is None and "no action queue" in report.outcomes[0].errors[0]


def test_a_failing_condition_is_reported_and_does_nothing(db: Database) -> None:
    add_node(db, "n1", "SN-4")
    bad = {"name": "bad", "if": "system.serial > 5", "add_tags": ["never"]}
    with db.session() as session:
        save_rules(session, rules(bad, BIG))
    report = run(db, "n1")
    assert not report.outcomes[0].matched and "not supported" in report.outcomes[0].errors[0]
    assert report.tags == ["big"]


def test_no_rules_no_change(db: Database) -> None:
    add_node(db, "n1", "SN-5")
    report = run(db, "n1")
    assert report.outcomes == [] and report.name is None


def test_dry_run_changes_nothing_and_sees_its_own_names(db: Database) -> None:
    add_node(db, "a", "DUP")
    add_node(db, "b", "DUP")  # the same serial: the second one would conflict
    add_node(db, "c", "SN-6", memory=8 * 2**30)
    with db.session() as session:
        result = dry_run(session, rules(NAMED, BIG, REBOOT).rules)
    assert (result.nodes, result.matched, result.renamed, result.conflicts) == (3, 3, 2, 1)
    assert result.actions == 1 and not result.truncated
    by_node = {r.node_id: r for r in result.reports}
    assert by_node["a"].name == "dup" and by_node["b"].outcomes[0].conflict == "dup"
    with db.session() as session:
        assert session.scalar(select(func.count()).where(Node.name.is_not(None))) == 0
        assert session.scalar(select(func.count()).select_from(NodeTag)) == 0
        assert session.scalar(select(func.count()).select_from(BootEvent)) == 0


def test_dry_run_over_ten_thousand_nodes(db: Database) -> None:
    """docs/rules.md quotes this: the dry run evaluates every node, in batches."""
    facts = {"system": {"vendor": "Dell Inc.", "serial": "X"}, "memory": {"total": 2**36},
             "disks": [{"name": f"sd{c}", "size": 10**12} for c in "abcd"]}  # fmt: skip
    with db.session() as session:
        session.add_all(
            Node(id=f"{i:08d}", facts={**facts, "system": {**facts["system"], "serial": f"S{i}"}},
                 heartbeat_s=30, first_seen_at=1.0, last_seen_at=1.0, boots=1)
            for i in range(10_000)
        )  # fmt: skip
    many = rules(NAMED, BIG, {"name": "disks", "if": "len(disks) >= 4 and disks[0].size > 500GB",
                              "add_tags": ["storage"]})  # fmt: skip
    with db.session() as session:
        started = time.monotonic()
        result = dry_run(session, many.rules)
        took = time.monotonic() - started
    assert result.nodes == 10_000 and result.renamed == 10_000
    assert len(result.reports) == 1000 and result.truncated
    print(f"dry run over 10,000 nodes: {took:.2f} s")
    assert took < 60
