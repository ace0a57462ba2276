"""The metrics: the database collector (nodes by status, builds by outcome and time) and
the ASGI middleware (latency by route template, boot file bytes)."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import httpx
import pytest
from fastapi import APIRouter, FastAPI, Response
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from livestrap.master.db import Database, migrate
from livestrap.master.httpmetrics import MetricsMiddleware
from livestrap.master.metrics import Metrics
from livestrap.master.models import Build, Node

pytestmark = pytest.mark.unit


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'm.db'}")
    migrate(database.engine)
    return database


def test_nodes_and_builds_come_from_the_database(db: Database) -> None:
    now = time.time()
    with db.session() as s:
        s.add_all(
            [
                Node(
                    id=f"n{i}",
                    first_seen_at=now,
                    last_seen_at=now - age,
                    heartbeat_s=30,
                    boots=1,
                    facts={},
                )
                for i, age in enumerate((0, 10, 89, 91, 5000))
            ]
        )
        for i, (state, seconds) in enumerate(
            [("succeeded", 100), ("succeeded", 400), ("failed", 20), ("queued", None)]
        ):
            started = None if seconds is None else now - seconds
            s.add(
                Build(
                    id=f"b{i}",
                    seq=i,
                    state=state,
                    spec={},
                    log_path="x",
                    created_at=now,
                    started_at=started,
                    finished_at=None if started is None else now,
                )
            )
    got = samples(Metrics(db, offline_after=3))
    assert got[("livestrap_nodes", (("status", "online"),))] == 3
    assert got[("livestrap_nodes", (("status", "offline"),))] == 2
    assert got[("livestrap_builds", (("state", "succeeded"),))] == 2
    assert got[("livestrap_builds", (("state", "queued"),))] == 1
    ok = (("outcome", "succeeded"),)
    assert got[("livestrap_build_duration_seconds_count", ok)] == 2
    assert got[("livestrap_build_duration_seconds_sum", ok)] == pytest.approx(500, abs=1)
    assert got[("livestrap_build_duration_seconds_bucket", (("le", "120.0"), *ok))] == 1
    assert got[("livestrap_build_duration_seconds_count", (("outcome", "failed"),))] == 1


def test_two_registries_in_one_process(db: Database) -> None:
    Metrics(db, 3)
    Metrics(db, 3).refuse("no token")  # a second app: no "Duplicated timeseries"


def test_middleware_labels_by_route_template_and_counts_boot_bytes(db: Database) -> None:
    metrics = Metrics(db, 3)
    app = FastAPI()

    @app.get("/boot/images/{image_id}/{name}")
    def artifact(image_id: str, name: str) -> Response:
        return Response(b"x" * 1000, status_code=200 if image_id != "gone" else 404)

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    transport = httpx.ASGITransport(app=app)

    async def calls() -> None:
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as c:
            for image in ("a", "b", "gone"):
                await c.get(f"/boot/images/{image}/root.squashfs")
            await c.get("/boot/images/a/other-name")  # not an artifact: no bytes counted
            await c.get("/no/such/page/12345")

    anyio.run(calls)
    got = samples(metrics)
    route = "/boot/images/{image_id}/{name}"
    key = (("method", "GET"), ("route", route), ("status", "2xx"))
    assert got[("livestrap_http_request_duration_seconds_count", key)] == 3
    nomatch = (("method", "GET"), ("route", "none"), ("status", "4xx"))
    assert got[("livestrap_http_request_duration_seconds_count", nomatch)] == 1
    assert (
        got[
            (
                "livestrap_http_time_to_first_byte_seconds_count",
                (("method", "GET"), ("route", route)),
            )
        ]
        == 4
    )
    bytes_key = (("artifact", "root.squashfs"), ("via", "master"))
    assert got[("livestrap_boot_file_bytes_total", bytes_key)] == 2000
    assert not any("12345" in str(k) or "gone" in str(k) for k in got)  # bounded labels


def test_route_template_keeps_the_include_prefix(db: Database) -> None:
    metrics = Metrics(db, 3)
    router = APIRouter(prefix="/nodes")

    @router.get("/{node_id}")
    def node(node_id: str) -> dict[str, str]:
        return {"id": node_id}

    app = FastAPI()
    app.include_router(router, prefix="/api/v1")
    app.add_middleware(MetricsMiddleware, metrics=metrics)

    async def calls() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://m") as c:
            for n in range(3):
                await c.get(f"/api/v1/nodes/n{n}")

    anyio.run(calls)
    key = (("method", "GET"), ("route", "/api/v1/nodes/{node_id}"), ("status", "2xx"))
    assert samples(metrics)[("livestrap_http_request_duration_seconds_count", key)] == 3
