"""Errors under /ui are pages with the console's security headers, not the API's JSON
(review items 1 and 6): 404, 405, 413, a stale CSRF token (reload, with a link back), an
expired session's POST, an unknown build's log, a server error; the API keeps its JSON.
In-process (Starlette's TestClient, no lifespan: no build queue)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from asgi import master_app
from livestrap.master.state import AppState

pytestmark = [pytest.mark.integration, pytest.mark.security]

HOST = "http://testserver"
SAME_ORIGIN = {"Origin": HOST, "Sec-Fetch-Site": "same-origin"}
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BACK = re.compile(r'<a id="back" href="([^"]*)">')


def boom() -> None:
    raise RuntimeError("a bug")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[FastAPI, AppState]]:
    with master_app(tmp_path / "data", max_body_bytes=4096) as (app, state):
        app.add_api_route("/ui/boom", boom)  # a console page with a bug
        app.add_api_route("/boom", boom)
        yield app, state


@pytest.fixture
def client(app: tuple[FastAPI, AppState]) -> Iterator[TestClient]:
    with TestClient(app[0], base_url=HOST, raise_server_exceptions=False) as c:
        c.headers.update(SAME_ORIGIN)
        yield c


def log_in(client: TestClient, state: AppState) -> str:
    answer = client.post("/ui/login", data={"token": state.admin_token}, follow_redirects=False)
    assert answer.status_code == 303
    found = CSRF.search(client.get("/ui/").text)
    assert found
    return found[1]


def assert_page(answer: object, status: int, *words: str) -> str:
    """A console problem page with `status` and the console's headers; its text."""
    from httpx import Response

    assert isinstance(answer, Response)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert 'id="problem"' in answer.text
    for word in words:
        assert word in answer.text
    return answer.text


def test_unknown_path_and_wrong_method(client: TestClient, app: tuple[FastAPI, AppState]) -> None:
    log_in(client, app[1])
    assert_page(client.get("/ui/nope"), 404, "Not found")
    static = client.get("/ui/static/nope.css")  # a page too (static files: no no-store)
    assert static.status_code == 404 and 'id="problem"' in static.text
    answer = client.get("/ui/logout")
    assert_page(answer, 405, "Not allowed")
    assert answer.headers["allow"] == "POST"
    assert_page(client.get("/ui/builds/nope/log"), 404, "no build")


def test_the_api_keeps_its_json(client: TestClient) -> None:
    answer = client.get("/api/v1/nope")
    assert answer.status_code == 404 and answer.json() == {"detail": "Not Found"}
    assert "content-security-policy" not in answer.headers


def test_a_body_over_the_cap(client: TestClient, app: tuple[FastAPI, AppState]) -> None:
    token = log_in(client, app[1])
    answer = client.post("/ui/settings", data={"csrf_token": token, "spec": "x" * 10_000})
    assert_page(answer, 413, "LIVESTRAP_MAX_BODY_BYTES")
    answer = client.put("/api/v1/settings", content=b"x" * 10_000)  # the API: JSON as before
    assert answer.status_code == 413 and "detail" in answer.json()


def test_a_stale_csrf_token_says_reload(client: TestClient, app: tuple[FastAPI, AppState]) -> None:
    log_in(client, app[1])
    referer = {"Referer": f"{HOST}/ui/settings"}
    answer = client.post("/ui/settings", data={"csrf_token": "old", "spec": ""}, headers=referer)
    text = assert_page(answer, 403, "reload it")
    assert BACK.findall(text) == ["/ui/settings"]
    evil = {"Referer": "https://evil.example/ui/settings"}
    answer = client.post("/ui/settings", data={"csrf_token": "old"}, headers=evil)
    assert BACK.findall(assert_page(answer, 403)) == ["/ui/"]


def test_a_post_without_a_session(client: TestClient) -> None:
    answer = client.post("/ui/images/x/activate", headers={"Referer": f"{HOST}/ui/images/x"})
    assert BACK.findall(assert_page(answer, 401, "log in again")) == ["/ui/login?next=/ui/images/x"]


def test_logout_without_a_session_goes_to_the_login(client: TestClient) -> None:
    answer = client.post("/ui/logout", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/login"


def test_logout_with_a_session_still_needs_the_token(
    client: TestClient, app: tuple[FastAPI, AppState]
) -> None:
    token = log_in(client, app[1])
    assert_page(client.post("/ui/logout"), 403)
    assert client.get("/ui/", follow_redirects=False).status_code == 200
    answer = client.post("/ui/logout", data={"csrf_token": token}, follow_redirects=False)
    assert answer.status_code == 303
    assert client.get("/ui/", follow_redirects=False).status_code == 303


def test_the_import_route_reads_the_token_from_the_header_only(
    client: TestClient, app: tuple[FastAPI, AppState]
) -> None:
    token = log_in(client, app[1])
    answer = client.post("/ui/images/import", data={"csrf_token": token})  # urlencoded
    assert_page(answer, 403, "reload")


def test_a_server_error_is_a_page_with_the_headers(client: TestClient) -> None:
    assert_page(client.get("/ui/boom"), 500, "Server error")
    answer = client.get("/boom")
    assert answer.status_code == 500 and answer.text == "Internal Server Error"
    assert "content-security-policy" not in answer.headers
