"""Node actions: the exact argument rules, then the queue's states on SQLite (delivered
at most once, one at a time per node, lost after the timeout, results only of a
delivered action), the bulk selector and the CLI's argument parsing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from pydantic import ValidationError
from sqlalchemy import select

from livestrap.cli.actions_cmd import _selector, parse_packages
from livestrap.errors import ConflictError, NotFoundError, OptionError
from livestrap.master.db import MIGRATIONS, Database, make_engine, migrate
from livestrap.master.models import BootEvent, Node, NodeAction, NodeMac
from livestrap.master.schemas.actions import ActionResult, Selector, checked_args
from livestrap.master.services import actions
from livestrap.master.services.action_expiry import sweep_expired
from livestrap.master.services.action_select import BadSelector, selected_nodes

pytestmark = pytest.mark.unit

T0 = 1_000_000.0
TIMEOUT = 900.0


def result(node_id: str, **kw: Any) -> ActionResult:
    fields: dict[str, Any] = {"node_id": node_id, "status": "succeeded", "exit_code": 0,
                              "output_tail": "done", "took_s": 2.5}  # fmt: skip
    return ActionResult(**{**fields, **kw})


@pytest.fixture
def nodes(db: Database) -> Iterator[list[str]]:
    """Three nodes: n1 and n2 online at T0, n3 last seen an hour before."""
    with db.session() as session:
        for n, seen in (("n1", T0), ("n2", T0), ("n3", T0 - 3600)):
            session.add(Node(id=n, facts={}, failures=[], heartbeat_s=30, first_seen_at=seen,
                             last_seen_at=seen, boots=1))  # fmt: skip
        session.flush()
        session.add(NodeMac(mac="52:54:00:00:00:02", node_id="n2"))
    yield ["n1", "n2", "n3"]
    actions.finished_hook.clear()


def events(db: Database, node_id: str) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as session:
        rows = session.scalars(select(BootEvent).where(BootEvent.node_id == node_id)
                               .order_by(BootEvent.id))  # fmt: skip
        return [(e.kind, e.detail) for e in rows]


# -- the arguments


@pytest.mark.parametrize(
    ("kind", "args", "clean"),
    [
        ("install", {"packages": [{"name": "htop"}]}, {"packages": [{"name": "htop",
                                                                     "version": None}]}),
        ("install", {"packages": [{"name": "livestrap-agent", "version": "1:0.2.0+src1~b1"}]},
         {"packages": [{"name": "livestrap-agent", "version": "1:0.2.0+src1~b1"}]}),
        ("reinspect", {}, {}),
        ("reboot", {}, {}),
        ("poweroff", {}, {}),
    ],
)  # fmt: skip
def test_good_arguments_are_kept_as_sent(kind: str, args: Any, clean: Any) -> None:
    assert checked_args(kind, args) == clean


@pytest.mark.parametrize(
    ("kind", "args", "field"),
    [
        ("shell", {}, ()),  # no such kind
        ("install", {}, ("install", "args", "packages")),
        ("install", {"packages": []}, ("install", "args", "packages")),
        ("install", {"packages": [{"name": "Htop"}]}, ("install", "args", "packages", 0, "name")),
        ("install", {"packages": [{"name": "-x"}]}, ("install", "args", "packages", 0, "name")),
        ("install", {"packages": [{"name": "x-"}]}, ("install", "args", "packages", 0, "name")),
        ("install", {"packages": [{"name": "a;rm -rf /"}]}, ("install", "args", "packages", 0,
                                                             "name")),
        ("install", {"packages": [{"name": "a", "version": "1 2"}]},
         ("install", "args", "packages", 0, "version")),
        ("install", {"packages": [{"name": "a", "pin": "x"}]}, ("install", "args", "packages", 0,
                                                                "pin")),
        ("install", {"packages": [{"name": "a"}], "force": True}, ("install", "args", "force")),
        ("install", {"packages": [{"name": f"p{i}"} for i in range(65)]},
         ("install", "args", "packages")),
        ("reboot", {"now": True}, ("reboot", "args", "now")),
        ("poweroff", None, ("poweroff", "args")),
    ],
)  # fmt: skip
def test_bad_arguments_name_the_field(kind: str, args: Any, field: tuple[Any, ...]) -> None:
    with pytest.raises(ValidationError) as err:
        checked_args(kind, args)
    assert [tuple(e["loc"]) for e in err.value.errors()] == [field]


def test_a_result_is_made_storable_and_bounded() -> None:
    stored = result("n1", output_tail="a\x00b\ud800", error="x\x00")
    assert (stored.output_tail, stored.error) == ("a\ufffdb\ufffd", "x\ufffd")
    for bad in ({"output_tail": "x" * 4097}, {"error": "e" * 501}, {"took_s": -1},
                {"took_s": float("nan")}, {"exit_code": 1 << 40}, {"status": "lost"}):  # fmt: skip
        with pytest.raises(ValidationError):
            result("n1", **bad)
    assert result("n1", extra="ignored").status == "succeeded"  # a newer agent's keys


# -- the queue


def test_an_action_is_delivered_once_then_the_next_after_its_result(
    db: Database, nodes: list[str]
) -> None:
    with db.session() as session:
        first = actions.queue_action(session, "n1", "reinspect", {}).id
        second = actions.queue_action(session, "n1", "reboot", {}).id
    with db.session() as session:
        orders = actions.claim(session, "n1", TIMEOUT, now=T0)
    assert [(o.id, o.kind, o.args) for o in orders] == [(first, "reinspect", {})]
    with db.session() as session:  # the node is at it: nothing more, the same not again
        assert actions.claim(session, "n1", TIMEOUT, now=T0 + 30) == []
        assert actions.claim(session, "n2", TIMEOUT, now=T0 + 30) == []
    with db.session() as session:
        assert actions.record_result(session, first, result("n1"), now=T0 + 40).state == (
            "succeeded"
        )
    with db.session() as session:
        assert [o.id for o in actions.claim(session, "n1", TIMEOUT, now=T0 + 60)] == [second]
    kinds = [k for k, _ in events(db, "n1")]
    assert kinds == ["action-delivered", "action-succeeded", "action-delivered"]
    done = events(db, "n1")[1][1]
    assert done == {"action_id": first, "kind": "reinspect", "exit_code": 0, "took_s": 2.5,
                    "output_tail": "done"}  # fmt: skip


def test_a_claim_rolled_back_delivers_nothing(db: Database, nodes: list[str]) -> None:
    """Delivered in the transaction of the answer: a batch that fails hands nothing out."""
    with db.session() as session:
        action = actions.queue_action(session, "n1", "reinspect", {}).id
    with pytest.raises(RuntimeError), db.session() as session:
        assert actions.claim(session, "n1", TIMEOUT, now=T0)
        raise RuntimeError("the batch failed")
    with db.session() as session:
        assert actions.find_action(session, action).state == "queued"
        assert [o.id for o in actions.claim(session, "n1", TIMEOUT, now=T0)] == [action]


def test_results_only_of_a_delivered_action_of_that_node(db: Database, nodes: list[str]) -> None:
    with db.session() as session:
        action = actions.queue_action(session, "n1", "reinspect", {}).id
    with db.session() as session, pytest.raises(ConflictError, match="queued"):
        actions.record_result(session, action, result("n1"))  # never handed out
    with db.session() as session:
        actions.claim(session, "n1", TIMEOUT, now=T0)
    for bad_id, node in (("no-such", "n1"), (action, "n2")):
        with db.session() as session, pytest.raises(NotFoundError):
            actions.record_result(session, bad_id, result(node))
    with db.session() as session:
        failure = result("n1", status="failed", exit_code=100, error="E: none")
        failed = actions.record_result(session, action, failure)
        assert (failed.state, failed.exit_code, failed.error) == ("failed", 100, "E: none")
    with db.session() as session, pytest.raises(ConflictError, match="failed"):
        actions.record_result(session, action, result("n1"))  # twice
    assert [k for k, _ in events(db, "n1")][-1] == "action-failed"


def test_a_delivered_action_without_result_is_lost_never_run_again(
    db: Database, nodes: list[str]
) -> None:
    with db.session() as session:
        lost = actions.queue_action(session, "n1", "install", {"packages": [{"name": "htop"}]}).id
        nxt = actions.queue_action(session, "n1", "reinspect", {}).id
    with db.session() as session:
        actions.claim(session, "n1", TIMEOUT, now=T0)
    with db.session() as session:  # the node rebooted: its heartbeat after the timeout
        assert [o.id for o in actions.claim(session, "n1", TIMEOUT, now=T0 + TIMEOUT + 1)] == [nxt]
        row = actions.find_action(session, lost)
        assert (row.state, row.finished_at) == ("lost", T0 + TIMEOUT + 1)
    with db.session() as session, pytest.raises(ConflictError, match="lost"):
        actions.record_result(session, lost, result("n1"))  # the late result is dropped
    assert [k for k, _ in events(db, "n1")] == ["action-delivered", "action-lost",
                                                "action-delivered"]  # fmt: skip


def test_the_sweep_loses_the_actions_of_vanished_nodes(db: Database, nodes: list[str]) -> None:
    seen: list[tuple[str, str]] = []
    actions.finished_hook.append(lambda session, a: seen.append((a.id, a.state)))
    with db.session() as session:
        ids = [actions.queue_action(session, n, "reboot", {}).id for n in ("n1", "n2")]
    with db.session() as session:
        actions.claim(session, "n1", TIMEOUT, now=T0)
        actions.claim(session, "n2", TIMEOUT, now=T0 + 500)
    with db.session() as session:
        assert actions.sweep_lost(session, TIMEOUT, now=T0 + TIMEOUT + 1) == 1
    assert seen == [(ids[0], "lost")]
    with db.session() as session:
        assert actions.find_action(session, ids[1]).state == "delivered"


def test_finished_hooks_run_in_the_same_transaction(db: Database, nodes: list[str]) -> None:
    def hook(session: Any, action: NodeAction) -> None:
        session.add(Node(id=f"hook-{action.state}", facts={}, failures=[], heartbeat_s=30,
                         first_seen_at=T0, last_seen_at=T0, boots=1))  # fmt: skip
        raise RuntimeError("the hook failed")

    with db.session() as session:
        action = actions.queue_action(session, "n1", "reinspect", {}).id
        actions.claim(session, "n1", TIMEOUT, now=T0)
    actions.finished_hook.append(hook)
    with pytest.raises(RuntimeError), db.session() as session:
        actions.record_result(session, action, result("n1"))
    with db.session() as session:  # the result went with the hook's failed transaction
        assert actions.find_action(session, action).state == "delivered"
        assert session.get(Node, "hook-succeeded") is None


def test_cancel_only_a_queued_action(db: Database, nodes: list[str]) -> None:
    with db.session() as session:
        a = actions.queue_action(session, "n1", "reinspect", {}).id
        b = actions.queue_action(session, "n1", "reboot", {}).id
    with db.session() as session:
        assert actions.cancel(session, b).state == "cancelled"
        assert [o.id for o in actions.claim(session, "n1", TIMEOUT, now=T0)] == [a]
    with db.session() as session, pytest.raises(ConflictError, match="delivered"):
        actions.cancel(session, a)
    with db.session() as session, pytest.raises(NotFoundError):
        actions.cancel(session, "nope")


def test_queue_refusals(db: Database, nodes: list[str]) -> None:
    with db.session() as session, pytest.raises(actions.UnknownNode):
        actions.queue_action(session, "nobody", "reboot", {})
    with db.session() as session, pytest.raises(ValueError, match="args"):
        actions.queue_action(session, "nobody", "reboot", {"x": 1})  # the field before the node
    with db.session() as session:
        for _ in range(actions.MAX_OPEN_PER_NODE):
            actions.queue_action(session, "n1", "reinspect", {})
    with db.session() as session, pytest.raises(actions.QueueFull):
        actions.queue_many(session, ["n2", "n1"], "reinspect", {})
    with db.session() as session:  # all or none: n2 got nothing
        assert actions.node_actions(session, "n2") == []
        seqs = [a.seq for a in actions.node_actions(session, "n1", limit=3)]
    assert seqs == [32, 31, 30]


# -- the bulk selector


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"all": True}, ["n1", "n2", "n3"]),
        ({"status": "online"}, ["n1", "n2"]),
        ({"status": "offline"}, ["n3"]),
        ({"all": True, "status": "offline"}, ["n3"]),
        ({"ids": ["n3", "n1", "n3"]}, ["n1", "n3"]),
        ({"ids": ["n1", "n3"], "status": "online"}, ["n1"]),
        ({"macs": ["52-54-00-00-00-02"]}, ["n2"]),
        ({"tag": "rack1"}, []),  # helper C's tags; the stub knows none
    ],
)
def test_the_selector(db: Database, nodes: list[str], selector: dict[str, Any],
                      expected: list[str]) -> None:  # fmt: skip
    with db.session() as session:
        assert sorted(selected_nodes(session, Selector(**selector), 30, 3, T0 + 1)) == expected


@pytest.mark.parametrize(
    ("selector", "error"),
    [
        ({}, BadSelector),
        ({"all": False}, BadSelector),
        ({"macs": ["zz"]}, BadSelector),
        ({"ids": ["n1", "nobody"]}, NotFoundError),
        ({"macs": ["52:54:00:99:99:99"]}, NotFoundError),
    ],
)
def test_bad_selectors(db: Database, nodes: list[str], selector: dict[str, Any],
                       error: type[Exception]) -> None:  # fmt: skip
    with db.session() as session, pytest.raises(error):
        selected_nodes(session, Selector(**selector), 30, 3, T0)


def test_a_selector_takes_no_other_keys() -> None:
    with pytest.raises(ValidationError, match="name"):
        Selector(**{"name": "x"})


# -- the CLI's arguments


def test_cli_packages() -> None:
    assert parse_packages(["htop", "livestrap-agent=0.2.0"]) == [
        {"name": "htop", "version": None},
        {"name": "livestrap-agent", "version": "0.2.0"},
    ]
    for bad in ("=1", "htop="):
        with pytest.raises(OptionError):
            parse_packages([bad])


def test_cli_selector() -> None:
    assert _selector("abc", False, None) is None
    assert _selector(None, True, None) == {"all": True}
    assert _selector(None, False, "rack1") == {"tag": "rack1"}
    for args in ((None, False, None), ("abc", True, None), (None, True, "t")):
        with pytest.raises(OptionError):
            _selector(*args)
    with pytest.raises(OptionError):
        _selector("../x", False, None)


# -- the migration


def test_0005_adds_the_table_and_a_node_takes_its_actions_along(tmp_path: Path) -> None:
    """On a database of 0004 with a node: the table comes up empty; forgetting the node
    deletes its actions (ON DELETE CASCADE); a downgrade drops the table again."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    _alembic(engine, "upgrade", "0004")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO nodes (id, facts, failures, heartbeat_s, "
                             "first_seen_at, last_seen_at, boots) "
                             "VALUES ('n1', '{}', '[]', 30, 1, 1, 1)"))  # fmt: skip
    migrate(engine)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with db.session() as session:
        assert actions.node_actions(session, "n1") == []
        actions.queue_action(session, "n1", "reboot", {})
    with db.session() as session:
        session.delete(session.get(Node, "n1"))
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM node_actions")).scalar() == 0
    db.dispose()
    _alembic(engine, "downgrade", "0004")
    assert "node_actions" not in sa.inspect(engine).get_table_names()
    engine.dispose()


def _alembic(engine: sa.Engine, how: str, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        getattr(command, how)(cfg, revision)


def test_a_queued_action_no_node_takes_expires_and_never_runs(
    db: Database, nodes: list[str]
) -> None:
    ttl = 86400.0
    with db.session() as session:  # n3 is offline; n1 takes its action before the TTL
        old = actions.queue_many(session, ["n1", "n3"], "reboot", {}, now=T0)
        fresh = actions.queue_many(session, ["n3"], "reinspect", {}, now=T0 + ttl)[0].id
        actions.claim(session, "n1", TIMEOUT, now=T0 + 10)
    with db.session() as session:
        assert sweep_expired(session, ttl, now=T0 + ttl + 1) == 1
    with db.session() as session:
        taken, expired = (actions.find_action(session, a.id) for a in old)
        assert taken.state == "delivered"
        assert (expired.state, expired.finished_at) == ("expired", T0 + ttl + 1)
        assert "86400 s" in (expired.error or "")
        # n3 comes back: only the action queued within the TTL goes out
        assert [o.id for o in actions.claim(session, "n3", TIMEOUT, now=T0 + ttl + 2)] == [fresh]
    assert [k for k, _ in events(db, "n3")] == ["action-expired", "action-delivered"]
    with db.session() as session:
        assert sweep_expired(session, ttl, now=T0 + ttl + 3) == 0
