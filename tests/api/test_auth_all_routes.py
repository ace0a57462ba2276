"""Every admin route, as the OpenAPI document lists them, refuses a missing, a wrong and the
discovery token, and answers it before looking at the body or the path's ids (the hostile
review found no way past auth: this keeps it so as routes are added)."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import httpx
import pytest

from masterproc import Master, master_process

pytestmark = [pytest.mark.integration, pytest.mark.security]

# the discovery token's routes: the reports, and the results of node actions
OPEN = {"/api/v1/discovery", "/api/v1/discovery/actions/{action_id}/result"}
METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("auth") / "data") as m:
        yield m


def admin_routes(master: Master) -> list[tuple[str, str]]:
    with master.anonymous() as client:
        paths = client.get("/openapi.json").json()["paths"]
    routes = []
    for path, item in paths.items():
        if not path.startswith("/api/v1/") or path in OPEN:
            continue
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        routes += [(method.upper(), concrete) for method in METHODS if method in item]
    return routes


def test_the_document_lists_the_admin_routes(master: Master) -> None:
    routes = admin_routes(master)
    assert len(routes) >= 20, routes
    assert ("PUT", "/api/v1/settings") in routes and ("POST", "/api/v1/images/import") in routes


@pytest.mark.parametrize("who", ["none", "wrong", "discovery", "not bearer"])
def test_every_admin_route_refuses(master: Master, who: str) -> None:
    headers = {
        "none": {},
        "wrong": {"Authorization": f"Bearer {secrets.token_urlsafe(32)}"},
        "discovery": {"Authorization": f"Bearer {master.discovery_token}"},
        "not bearer": {"Authorization": f"Basic {master.admin_token}"},
    }[who]
    answers = {}
    with httpx.Client(base_url=master.url, timeout=30) as client:
        for method, path in admin_routes(master):
            response = client.request(method, path, headers=headers, content=b'{"x": 1}')
            answers[f"{method} {path}"] = response.status_code
    assert set(answers.values()) <= {401, 403}, answers
