"""Unique id prefixes: the shared rule, the image store, and the indexed lookup on SQLite."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text
from store_helpers import add_image
from store_helpers import store_fixture as store_fixture

from livestrap.errors import ConflictError, ImageNotFound, StoreError
from livestrap.ids import MAX_LISTED, AmbiguousIdError, unique_match
from livestrap.master.db import Database
from livestrap.master.lookup import full_id, prefix_query
from livestrap.master.models import Node
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit


def test_unique_match() -> None:
    ids = ["ab12", "ab34", "cd56"]
    assert unique_match("node", "cd", ids) == "cd56"
    assert unique_match("node", "ab12", ids) == "ab12"
    assert unique_match("node", "x", ids) is None
    with pytest.raises(AmbiguousIdError) as err:
        unique_match("node", "ab", ids)
    assert err.value.candidates == ["ab12", "ab34"]
    assert str(err.value) == "node id prefix 'ab' is ambiguous: ab12, ab34"
    assert isinstance(err.value, ConflictError)  # the API answers 409


def test_an_exact_id_wins_over_longer_ids_it_prefixes() -> None:
    assert unique_match("image", "rack", ["rack", "rack-2"]) == "rack"


def test_ambiguity_lists_at_most_max_listed() -> None:
    ids = [f"a{i:02}" for i in range(MAX_LISTED + 5)]
    with pytest.raises(AmbiguousIdError) as err:
        unique_match("build", "a", ids)
    assert len(err.value.candidates) == MAX_LISTED and str(err.value).endswith(", ...")


def test_store_resolves_prefixes(store: ImageStore) -> None:
    add_image(store, "rack-20240501-120000")
    add_image(store, "rack-20240502-120000")
    add_image(store, "lab-20240501-120000")
    assert store.resolve("lab") == "lab-20240501-120000"
    assert store.resolve("rack-20240502") == "rack-20240502-120000"
    assert store.resolve("rack-20240501-120000") == "rack-20240501-120000"
    with pytest.raises(AmbiguousIdError, match="rack-20240501-120000, rack-20240502-120000"):
        store.resolve("rack")
    with pytest.raises(ImageNotFound, match="no image web"):
        store.resolve("web")
    with pytest.raises(StoreError, match="invalid image id"):
        store.resolve("../etc")


def test_store_resolve_skips_links_and_files(store: ImageStore) -> None:
    add_image(store, "good-1")
    (store.images_dir / "good-link").symlink_to("good-1")
    (store.images_dir / "good-file").write_text("x")
    assert store.resolve("good") == "good-1"


def test_empty_store_resolves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFound):
        ImageStore(tmp_path / "none").resolve("x")


def add_nodes(db: Database, ids: list[str]) -> None:
    with db.session() as session:
        session.add_all(
            Node(id=i, heartbeat_s=30, first_seen_at=0.0, last_seen_at=0.0, facts={}, failures=[])
            for i in ids
        )


def test_full_id_on_sqlite(db: Database) -> None:
    add_nodes(db, ["ab12-x", "ab34-y", "ab%_", "cd56"])
    with db.session() as s:
        assert full_id(s, Node.id, "node", "cd56") == "cd56"
        assert full_id(s, Node.id, "node", "cd") == "cd56"
        assert full_id(s, Node.id, "node", "ab12") == "ab12-x"
        assert full_id(s, Node.id, "node", "ab%") == "ab%_"  # wildcards are plain characters
        assert full_id(s, Node.id, "node", "AB12") is None  # ids are case-sensitive
        assert full_id(s, Node.id, "node", "zz") is None
        assert full_id(s, Node.id, "node", "") is None
        with pytest.raises(AmbiguousIdError) as err:
            full_id(s, Node.id, "node", "ab")
        assert err.value.candidates == ["ab%_", "ab12-x", "ab34-y"]


def test_prefix_lookup_uses_the_primary_key_index(db: Database) -> None:
    """A range on the primary key's index, not a scan of the table."""
    query = prefix_query(Node.id, "ab").compile(db.engine, compile_kwargs={"literal_binds": True})
    assert "nodes.id >= 'ab' AND nodes.id < 'ac'" in str(query)
    with db.session() as s:
        plan = " ".join(str(row[-1]) for row in s.execute(text(f"EXPLAIN QUERY PLAN {query}")))
    assert "SEARCH" in plan and "INDEX" in plan, plan


def test_prefix_lookup_stays_fast_with_10000_nodes(db: Database) -> None:
    ids = [f"{n:08x}-0000-4000-8000-{n:012x}" for n in range(0, 10_000 * 7919, 7919)]
    add_nodes(db, ids)
    with db.session() as s:
        t0 = time.perf_counter()
        for node_id in ids[:200]:
            assert full_id(s, Node.id, "node", node_id[:9]) == node_id
        per_lookup = (time.perf_counter() - t0) / 200
    assert per_lookup < 0.005, f"{per_lookup * 1000:.1f} ms per prefix lookup"
