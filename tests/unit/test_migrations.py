"""Migrations on a database that already has data: 0003 fills the search columns of the
nodes registered before it, and 0002's sessions table comes up empty."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from livestrap.master.db import MIGRATIONS, make_engine, migrate

pytestmark = pytest.mark.unit


def upgrade_to(engine: sa.Engine, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_0003_fills_the_search_columns_of_existing_nodes(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to(engine, "0001")
    facts = {"system": {"vendor": "Dell Inc.", "product": "R650", "serial": "S" * 300}}
    with engine.begin() as conn:
        for node_id, node_facts in (("n1", facts), ("n2", {}), ("n3", {"system": "junk"})):
            conn.execute(
                sa.text(
                    "INSERT INTO nodes (id, facts, failures, heartbeat_s, first_seen_at, "
                    "last_seen_at, boots) VALUES (:id, :facts, '[]', 30, 1, 1, 1)"
                ),
                {"id": node_id, "facts": json.dumps(node_facts)},
            )
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, vendor, product, serial FROM nodes ORDER BY id"))
        got = [tuple(r) for r in rows]
        sessions = conn.execute(sa.text("SELECT count(*) FROM console_sessions")).scalar()
    assert got == [("n1", "Dell Inc.", "R650", "S" * 255), ("n2", None, None, None),
                   ("n3", None, None, None)]  # fmt: skip
    assert sessions == 0
    engine.dispose()


def test_0004_adds_cancel_requested_false_to_existing_builds(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO builds (id, seq, state, progress, spec, activate, force, reused, "
                "log_path, created_at) VALUES ('b1', 1, 'queued', 0, '{}', 0, 0, 0, 'x', 1)"
            )
        )
    migrate(engine)
    with engine.connect() as conn:
        value = conn.execute(sa.text("SELECT cancel_requested FROM builds")).scalar()
    assert value in (0, False)


def test_0003_pages_through_more_nodes_than_a_batch(tmp_path: Path) -> None:
    """Every node is filled, across page boundaries (BATCH is 500: 2 pages and a bit)."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to(engine, "0001")
    ids = [f"n{i:05d}" for i in range(1003)]
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO nodes (id, facts, failures, heartbeat_s, first_seen_at, "
                "last_seen_at, boots) VALUES (:id, :facts, '[]', 30, 1, 1, 1)"
            ),
            [{"id": i, "facts": json.dumps({"system": {"serial": f"S-{i}"}})} for i in ids],
        )
    migrate(engine)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT id, serial FROM nodes ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(i, f"S-{i}") for i in ids]
    engine.dispose()


def test_a_lone_surrogate_reaches_a_search_column_as_a_replacement() -> None:
    from livestrap.master.models import SEARCH_LEN, search_fields

    facts = {"system": {"vendor": "bad\ud800", "product": "x" * 300, "serial": "a\x00"}}
    assert search_fields(facts) == ("bad\ufffd", "x" * SEARCH_LEN, "a\ufffd")


def test_upgrading_to_head_keeps_every_node_link(tmp_path: Path) -> None:
    """0006 once rebuilt `nodes` on SQLite (a unique constraint added in batch mode): the
    DROP TABLE cascaded, deleting every MAC and cutting every boot event from its node."""
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade_to(engine, "0004")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO nodes (id, facts, failures, heartbeat_s, first_seen_at, last_seen_at, "
            "boots) VALUES ('n1', '{}', '[]', 30, 1, 1, 1)"))  # fmt: skip
        conn.execute(
            sa.text("INSERT INTO node_macs (mac, node_id) VALUES ('aa:bb:cc:dd:ee:01', 'n1')")
        )
        conn.execute(sa.text("INSERT INTO boot_events (at, kind, node_id, detail) "
                             "VALUES (1, 'report', 'n1', '{}')"))  # fmt: skip
    migrate(engine)
    with engine.connect() as conn:
        macs = conn.execute(sa.text("SELECT node_id FROM node_macs")).scalars().all()
        events = conn.execute(sa.text("SELECT node_id FROM boot_events")).scalars().all()
        fk = conn.execute(sa.text("PRAGMA foreign_keys")).scalar()
    assert macs == ["n1"] and events == ["n1"]
    assert fk == 1  # back on after the migrations
    engine.dispose()
