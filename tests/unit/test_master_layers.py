"""The master's layers: router -> service -> models. Schemas know neither the tables nor
the store's files, routers open no transaction of their own, and each resource has one
mapper from what is stored to what the API answers (master.services)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from store_helpers import add_image

from livestrap.master.db import Database
from livestrap.master.models import BootEvent, Node, NodeMac
from livestrap.master.queries import parse_cursor
from livestrap.master.schemas.images import ImageDetail
from livestrap.master.services import nodes
from livestrap.master.services.images import image_detail, image_summary, info_of
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata

pytestmark = pytest.mark.unit

MASTER = Path(__file__).parents[2] / "src" / "livestrap" / "master"
# what a schema may not import: the tables, the session, the store's on-disk types
NOT_IN_SCHEMAS = ("livestrap.master.models", "sqlalchemy", "livestrap.store")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((MASTER / "schemas").glob("*.py")), ids=lambda p: p.name)
def test_schemas_know_no_tables_sessions_or_store_files(path: Path) -> None:
    bad = {n for n in _imports(path) if n.startswith(NOT_IN_SCHEMAS)}
    assert not bad, f"{path.name} imports {sorted(bad)}"


@pytest.mark.parametrize("path", sorted((MASTER / "routes").glob("*.py")), ids=lambda p: p.name)
def test_routers_open_no_transaction_of_their_own(path: Path) -> None:
    """SessionDep gives a handler its transaction; the writes that need their own (the
    boot timeline, the end of a log stream) live in master.services."""
    calls = [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "session"
    ]
    assert not calls, f"{path.name} opens a session at lines {calls}"


def _splats(path: Path) -> list[int]:
    """Lines where a call takes `**something` that is not another model's model_dump()."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        for kw in node.keywords
        if kw.arg is None
        and not (
            isinstance(kw.value, ast.Call)
            and isinstance(kw.value.func, ast.Attribute)
            and kw.value.func.attr == "model_dump"
        )
    ]


@pytest.mark.parametrize("path", [MASTER / "services/builds.py", MASTER / "services/nodes.py"])
def test_mappers_build_their_schemas_field_by_field(path: Path) -> None:
    """A dict[str, Any] splatted into a schema escapes mypy (a misspelled or mistyped key
    passes): summaries are built with keywords, details from a checked summary."""
    assert not _splats(path), f"{path.name} splats a dict at lines {_splats(path)}"


def test_the_api_image_is_not_the_file_format(tmp_path: Path) -> None:
    """The API's ImageDetail is a model of its own, mapped field by field, in the order
    the API has always answered."""
    assert not issubclass(ImageDetail, ImageMetadata)
    store = ImageStore(tmp_path)
    meta = add_image(store, "img-1")
    answer = image_detail(meta, "img-1").model_dump(mode="json")
    assert list(answer) == [
        "id", "label", "created", "builder", "distro", "suite", "arch", "spec", "spec_sha256",
        "kernel_version", "kernel_cmdline", "agent_version", "inputs_sha256", "base_tree",
        "packages", "artifacts", "active", "problems", "boot_ram_mb", "source_date_epoch",
        "firmware_packages",
    ]  # fmt: skip
    # driver_coverage (tens of KB) is served by GET /api/v1/images/{id}/drivers instead
    whole = meta.model_dump(mode="json", exclude={"driver_coverage"})
    assert answer == {**whole, "active": True, "problems": []}


def test_an_imported_image_is_summed_up_as_the_list_shows_it(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    meta = add_image(store, "img-1")
    (listed,) = store.list()
    assert image_summary(info_of(meta, None)) == image_summary(listed)


def _node(node_id: str, first_seen: float, facts: dict[str, Any]) -> Node:
    return Node(id=node_id, system_uuid=None, boot_mac="aa:bb:cc:00:00:01", last_ip="10.0.0.9",
                image_id="img-1", agent_version="0.1", facts=facts, facts_hash="h",
                failures=[], heartbeat_s=30, first_seen_at=first_seen, last_seen_at=100.0,
                boots=2)  # fmt: skip


def test_both_views_of_a_node_share_one_mapper(db: Database) -> None:
    """The list takes vendor, product and serial out of the facts in SQL, the detail in
    Python: the same summary either way."""
    facts = {"system": {"vendor": "Dell", "product": "R640", "serial": "S1"}}
    with db.session() as s:
        s.add(_node("n-1", 10.0, facts))
        s.add(_node("n-2", 20.0, {"system": "not a mapping"}))
        s.flush()
        s.add(NodeMac(mac="aa:bb:cc:00:00:01", node_id="n-1"))
    with db.session() as s:
        listed, next_cursor = nodes.list_nodes(s, 50.0, None, None, None, limit=1)
        assert next_cursor == "10.0,n-1"
        detail = nodes.show_node(s, "n-1", 50.0)
        summary = listed[0].model_dump()
        assert detail.model_dump(include=set(summary)) == summary
        assert (detail.vendor, detail.serial, detail.status) == ("Dell", "S1", "online")
        assert detail.macs == ["aa:bb:cc:00:00:01"]
        (second,), last = nodes.list_nodes(s, 50.0, None, None, (10.0, "n-1"), limit=1)
        assert last is None and second.vendor is None
        assert nodes.show_node(s, "n-2", 200.0).vendor is None


def test_the_timeline_pages_with_the_same_cursor_rule(db: Database) -> None:
    with db.session() as s:
        s.add(_node("n-1", 10.0, {}))
        s.flush()
        s.add_all(BootEvent(at=float(at), kind="script", node_id="n-1", detail={}) for at in (1, 2))
    with db.session() as s:
        (first,), after = nodes.node_timeline(s, "n-1", None, limit=1)
        assert first.kind == "script" and after is not None and after.startswith("1.0,")
        (second,), end = nodes.node_timeline(s, "n-1", parse_cursor(after, int_id=True), limit=1)
        assert second.at.timestamp() == 2.0 and end is None
