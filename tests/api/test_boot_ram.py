"""/boot/ipxe refuses a known node whose last facts show less RAM than the active image's
boot_ram_mb; unknown nodes, bigger nodes and images without the figure boot as before.
In-process (TestClient, no lifespan)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from asgi import master_app
from livestrap.master.ipxe import render_low_memory_script
from livestrap.master.models import BootEvent, Node, NodeMac
from livestrap.master.state import AppState
from livestrap.store.manifest import METADATA

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import write_image_dir

pytestmark = pytest.mark.integration

IMAGE = "img-ram"
SMALL, BIG = "52:54:00:00:00:01", "52:54:00:00:00:02"
MIB = 1 << 20


def node(node_id: str, mac: str, ram_mib: int) -> tuple[Node, NodeMac]:
    facts: dict[str, Any] = {"memory": {"total": ram_mib * MIB - 40 * MIB,
                                        "dimms": [{"size": ram_mib * MIB}]}}  # fmt: skip
    row = Node(id=node_id, system_uuid=None, boot_mac=mac, last_ip=None, image_id=None,
               agent_version=None, facts=facts, facts_hash=None, failures=[], heartbeat_s=30,
               first_seen_at=1.0, last_seen_at=1.0, boots=1)  # fmt: skip
    return row, NodeMac(mac=mac, node_id=node_id)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[TestClient, AppState]]:
    data = tmp_path / "data"
    write_image_dir(data / "images", IMAGE)
    with master_app(data) as (app, state):
        with state.db.session() as s:
            s.add_all([*node("n-small", SMALL, 256), *node("n-big", BIG, 1024)])
        with TestClient(app, base_url="http://10.0.0.1:8080") as client:
            yield client, state


def set_boot_ram(state: AppState, mib: int | None) -> None:
    path = state.store.images_dir / IMAGE / METADATA
    meta = yaml.safe_load(path.read_text())
    meta["boot_ram_mb"] = mib
    path.write_text(yaml.safe_dump(meta, sort_keys=False))
    state.store.activate(IMAGE)


def script(client: TestClient, mac: str | None) -> str:
    r = client.get("/boot/ipxe", params={"mac": mac} if mac else None)
    assert r.status_code == 200
    return r.text


def test_a_known_node_too_small_is_refused(app: tuple[TestClient, AppState]) -> None:
    client, state = app
    set_boot_ram(state, 271)
    text = script(client, SMALL.upper().replace(":", "-"))
    assert text == render_low_memory_script("http://10.0.0.1:8080", IMAGE, 271, 256, 30)
    assert not any(line.startswith(("kernel ", "boot")) for line in text.splitlines())
    with state.db.session() as s:
        event = s.scalars(select(BootEvent).where(BootEvent.mac == SMALL)).one()
        assert (event.image_id, event.detail) == (
            None, {"retry_s": 30, "needs_mib": 271, "has_mib": 256})  # fmt: skip


@pytest.mark.parametrize("mac", [BIG, "52:54:00:00:00:99", None])
def test_big_and_unknown_nodes_boot(app: tuple[TestClient, AppState], mac: str | None) -> None:
    client, state = app
    set_boot_ram(state, 271)
    assert f"kernel http://10.0.0.1:8080/boot/images/{IMAGE}/vmlinuz" in script(client, mac)


def test_an_image_without_the_figure_boots_everyone(app: tuple[TestClient, AppState]) -> None:
    client, state = app
    set_boot_ram(state, None)
    assert "kernel " in script(client, SMALL)
