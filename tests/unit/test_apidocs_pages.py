"""The docs pages and their headers, as pure functions: exact output, hostile titles
escaped, and the operationIds made of route names."""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute

from livestrap.master.apidocs import docs_headers, operation_id, redoc_page, swagger_page

pytestmark = pytest.mark.unit

SWAGGER = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livestrap master - Swagger UI</title>
<link rel="icon" type="image/png" href="/docs-static/favicon.png">
<link rel="stylesheet" href="/docs-static/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/docs-static/swagger-ui-bundle.js"></script>
<script src="/docs-static/swagger-init.js"></script>
</body>
</html>
"""

REDOC = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>livestrap master - ReDoc</title>
<link rel="icon" type="image/png" href="/m/docs-static/favicon.png">
</head>
<body>
<redoc spec-url="/m/openapi.json"></redoc>
<script src="/m/docs-static/redoc.standalone.js"></script>
</body>
</html>
"""

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)


def test_the_swagger_page() -> None:
    assert swagger_page("livestrap master", "/openapi.json") == SWAGGER


def test_the_redoc_page_under_a_root_path() -> None:
    assert redoc_page("livestrap master", "/m/openapi.json", "/m/docs-static") == REDOC


@pytest.mark.parametrize("page", [swagger_page, redoc_page])
def test_a_hostile_title_or_url_stays_text(page: object) -> None:
    assert callable(page)
    text = page("<script>alert(1)</script>", '/x" onload="alert(1)')
    assert "<script>alert" not in text and '" onload=' not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "/x&quot; onload=&quot;alert(1)" in text


def test_the_headers() -> None:
    assert docs_headers() == {
        "Content-Security-Policy": POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    redoc = docs_headers(redoc=True)
    assert redoc["Content-Security-Policy"] == POLICY + "; worker-src 'self' blob:"


def _noop() -> None:
    pass


@pytest.mark.parametrize(
    ("name", "methods", "expected"),
    [
        ("list_nodes", ["GET"], "listNodes"),
        ("node_timeline", ["GET"], "nodeTimeline"),
        ("healthz", ["GET"], "healthz"),
        ("artifact_for_mac", ["HEAD"], "headArtifactForMac"),
        ("artifact_for_mac", ["GET"], "artifactForMac"),
        ("_private__name_", ["POST"], "privateName"),
    ],
)
def test_operation_ids_are_camel_case_route_names(
    name: str, methods: list[str], expected: str
) -> None:
    route = APIRoute("/x", _noop, name=name, methods=methods)
    assert operation_id(route) == expected
