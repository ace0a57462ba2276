"""The tokens are declared through FastAPI's security classes, so the OpenAPI document
names them (Swagger's Authorize button works) and says which route takes which; the
answers to a missing or wrong token stay what clients know. A route added under /api/v1
without the admin dependency fails here, in the document and in the route table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from asgi import Answer, bearer, call, master_app
from livestrap.master.deps import require_admin
from livestrap.master.state import AppState

pytestmark = [pytest.mark.integration, pytest.mark.security]

DISCOVERY = "/api/v1/discovery"
ACTION_RESULT = "/api/v1/discovery/actions/{action_id}/result"  # the agent's, token too
DISCOVERY_PATHS = {DISCOVERY, ACTION_RESULT}
ADMIN = [{"adminToken": []}]
ADMIN_DETAIL = "admin token required (Authorization: Bearer <data-dir>/admin.token)"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[FastAPI, AppState]]:
    with master_app(tmp_path / "data") as pair:
        yield pair


def operations(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": op
        for path, item in doc["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def undeclared_admin_routes(app: FastAPI) -> list[str]:
    """/api/v1 operations, other than discovery, whose document lacks the admin scheme."""
    return sorted(
        name
        for name, op in operations(app.openapi()).items()
        if name.split(" ")[1].startswith("/api/v1/")
        and name.split(" ")[1] not in DISCOVERY_PATHS
        and op.get("security") != ADMIN
    )


def _calls(dependant: Dependant) -> Iterator[Any]:
    for sub in dependant.dependencies:
        yield sub.call
        yield from _calls(sub)


def unguarded_admin_routes(app: FastAPI) -> list[str]:
    """/api/v1 routes, other than discovery, that never run require_admin (a route that
    only declared the scheme would show in the document yet let anyone in)."""
    return sorted(
        f"{sorted(route.methods)} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute)
        and route.path.startswith("/api/v1/")
        and route.path not in DISCOVERY_PATHS
        and require_admin not in set(_calls(route.dependant))
    )


def test_the_document_names_both_schemes(master: tuple[FastAPI, AppState]) -> None:
    schemes = master[0].openapi()["components"]["securitySchemes"]
    assert set(schemes) == {"adminToken", "discoveryToken"}
    for scheme in schemes.values():
        assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")


def test_each_route_declares_its_token(master: tuple[FastAPI, AppState]) -> None:
    ops = operations(master[0].openapi())
    admin = [name for name, op in ops.items() if op.get("security") == ADMIN]
    assert len(admin) >= 20 and "PUT /api/v1/settings" in admin, admin
    assert ops[f"POST {DISCOVERY}"]["security"] == [{"discoveryToken": []}]
    assert ops[f"POST {ACTION_RESULT}"]["security"] == [{"discoveryToken": []}]
    assert undeclared_admin_routes(master[0]) == []
    assert ops["GET /metrics"].get("security") == ADMIN  # the scraper holds the admin token
    public = {name: op.get("security") for name, op in ops.items()
              if " /api/" not in name and name != "GET /metrics"}  # fmt: skip
    assert "GET /boot/ipxe" in public and "GET /healthz" in public
    assert set(map(str, public.values())) == {"None"}, public  # no token asked of a node


def test_every_admin_route_runs_the_check(master: tuple[FastAPI, AppState]) -> None:
    assert unguarded_admin_routes(master[0]) == []


def test_a_route_added_without_the_dependency_is_caught(
    master: tuple[FastAPI, AppState],
) -> None:
    app = master[0]

    @app.get("/api/v1/forgotten")
    def forgotten() -> dict[str, str]:
        return {}

    app.openapi_schema = None  # the document is cached
    assert undeclared_admin_routes(app) == ["GET /api/v1/forgotten"]
    assert unguarded_admin_routes(app) == ["['GET'] /api/v1/forgotten"]


def _refused(answer: Answer) -> None:
    assert answer.status == 401
    assert answer.headers["www-authenticate"] == "Bearer"
    assert answer.json() == {"detail": ADMIN_DETAIL}


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", "Bearer   ", "Bearer wrong", "Basic {admin}", "{admin}", "Bearer{admin}"],
)
def test_admin_refusals_are_unchanged(master: tuple[FastAPI, AppState], header: str | None) -> None:
    app, state = master
    headers = {} if header is None else {"authorization": header.format(admin=state.admin_token)}
    _refused(call(app, "GET", "/api/v1/nodes", headers=headers))


def test_the_discovery_token_is_no_admin_token(master: tuple[FastAPI, AppState]) -> None:
    app, state = master
    _refused(call(app, "GET", "/api/v1/nodes", headers=bearer(state.discovery_token)))


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_admin_token_is_taken(master: tuple[FastAPI, AppState], scheme: str) -> None:
    app, state = master
    headers = {"authorization": f"{scheme}  {state.admin_token} "}
    assert call(app, "GET", "/api/v1/nodes", headers=headers).status == 200
