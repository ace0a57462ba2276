"""A node reference: its id, its name, then a unique id prefix, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.master.db import Database, migrate
from livestrap.master.models import Node
from livestrap.master.services.nodes import node_id

pytestmark = pytest.mark.unit


def test_a_name_goes_before_an_id_prefix(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(db.engine)
    a, b = "db1e0c2a-0000-4000-8000-000000000001", "0c2a0000-0000-4000-8000-000000000002"
    with db.session() as session:
        for nid, name in ((a, None), (b, "db1")):
            session.add(Node(id=nid, name=name, facts={}, failures=[], heartbeat_s=30,
                             first_seen_at=1.0, last_seen_at=1.0))  # fmt: skip
    with db.session() as session:
        assert node_id(session, "db1") == b  # the name, not a's prefix
        assert node_id(session, "db1e") == a  # a prefix still works
        assert node_id(session, a) == a
    db.dispose()
