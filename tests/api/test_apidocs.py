"""/docs and /redoc work on a network with no internet: every URL they load is the
master's own and is served, the pages run no inline script, and the OpenAPI document they
show has readable, unique operationIds and a summary for every operation."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from asgi import master_app

pytestmark = pytest.mark.integration

PAGES = ["/docs", "/redoc"]
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}
CAMEL = re.compile(r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*")
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FastAPI]:
    with master_app(tmp_path_factory.mktemp("apidocs") / "data") as (master, _):
        yield master


class Client:
    """GETs through httpx's ASGI transport (no lifespan: no build queue)."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    def get(self, url: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://master") as c:
                return await c.get(url)

        return anyio.run(fetch)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Client:
    return Client(app)


class Links(HTMLParser):
    """Every src/href of a page, and the text inside its <script> elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in ("src", "href", "spec-url")]
        self.urls += [v or "" for k, v in attrs if k == "data-openapi-url"]
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def page(client: Client, path: str) -> tuple[httpx.Response, Links]:
    answer = client.get(path)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    links = Links()
    links.feed(answer.text)
    return answer, links


@pytest.mark.parametrize("path", PAGES)
def test_the_page_loads_only_the_masters_own_urls(client: Client, path: str) -> None:
    answer, links = page(client, path)
    body = answer.text.lower()
    assert "http" not in body and "cdn" not in body and "//" not in body, body
    assert links.urls and all(u.startswith("/") and not u.startswith("//") for u in links.urls)
    for url in links.urls:
        if url == "/openapi.json":
            continue
        served = client.get(url)
        assert served.status_code == 200, url
        assert served.headers["content-type"].startswith(TYPES[Path(url).suffix]), url
        assert len(served.content) > 1000 or url.endswith("init.js"), url


@pytest.mark.parametrize("path", PAGES)
def test_the_page_runs_no_inline_script(client: Client, path: str) -> None:
    answer, links = page(client, path)
    assert "".join(links.script_text).strip() == ""
    assert "on" not in {a[:2] for a in re.findall(r" ([a-z-]+)=", answer.text)}
    policy = dict(
        d.strip().split(" ", 1) for d in answer.headers["content-security-policy"].split(";")
    )
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'" and policy["frame-ancestors"] == "'none'"
    assert "'unsafe-eval'" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_the_init_script_and_stylesheets_fetch_nothing_from_elsewhere(
    client: Client,
) -> None:
    init = client.get("/docs-static/swagger-init.js").text
    assert "SwaggerUIBundle(" in init and "http" not in init
    assert "validatorUrl: null" in init  # else Swagger UI asks validator.swagger.io
    css = client.get("/docs-static/swagger-ui.css").text
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", css) and "@import" not in css


def test_the_old_cdn_pages_are_gone(app: FastAPI, client: Client) -> None:
    assert client.get("/docs/oauth2-redirect").status_code == 404
    paths = app.openapi()["paths"]
    assert not any(p.startswith(("/docs", "/redoc")) for p in paths)


def operations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [op for item in doc["paths"].values() for m, op in item.items() if m in METHODS]


def test_every_operation_has_a_readable_unique_id_and_a_summary(app: FastAPI) -> None:
    app.openapi_schema = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # FastAPI warns of a duplicate operationId
        doc = app.openapi()
    ops = operations(doc)
    ids = [op["operationId"] for op in ops]
    assert len(ops) >= 25
    assert [i for i in ids if not CAMEL.fullmatch(i) or len(i) > 40] == []
    assert len(set(ids)) == len(ids)
    assert [op["operationId"] for op in ops if not op.get("summary", "").strip()] == []
    for wanted in ("listNodes", "showNode", "nodeTimeline", "deleteNode", "startBuild",
                   "listBuilds", "listImages", "activateImage", "submitReport", "bootScript",
                   "getSettings", "healthz"):  # fmt: skip
        assert wanted in ids


def test_the_document_keeps_both_security_schemes(client: Client) -> None:
    doc = client.get("/openapi.json").json()
    assert set(doc["components"]["securitySchemes"]) == {"adminToken", "discoveryToken"}
    ops = {op["operationId"]: op for op in operations(doc)}
    assert ops["listNodes"]["security"] == [{"adminToken": []}]
    assert ops["submitReport"]["security"] == [{"discoveryToken": []}]
