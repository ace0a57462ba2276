"""/docs (Swagger UI) and /redoc, served by the master itself: an air-gapped provisioning
network has no CDN. The assets are fastapi-offline's bundled copies; the pages are ours,
so they carry no inline script and the Content-Security-Policy can forbid it. Also the
operationIds: readable camelCase for generated clients, not FastAPI's path-mangled ones."""

from __future__ import annotations

from html import escape
from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/docs-static"
# Swagger UI 5.32 and ReDoc 2.5, as the fastapi-offline wheel bundles them
VENDORED = Path(fastapi_offline.__file__).parent / "static"
OWN_STATIC = ("livestrap.master", "apidocs_static")  # swagger-init.js

# Both apply inline styles (Swagger UI 5 to some elements, ReDoc's styled-components
# inject <style>), so style-src needs 'unsafe-inline'; scripts stay same-origin only.
_CSP = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data:",  # the stylesheets' icons are data: SVGs
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
}
# ReDoc runs its search index in a Worker made from a blob: URL
_REDOC_CSP = {**_CSP, "worker-src": "'self' blob:"}


def operation_id(route: APIRoute) -> str:
    """camelCase of the route's function name (list_nodes -> listNodes); a HEAD-only route,
    which shares its function with a GET one, gets `head` in front."""
    words = [w for w in route.name.split("_") if w]
    if route.methods == {"HEAD"}:
        words.insert(0, "head")
    return words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])


def docs_headers(*, redoc: bool = False) -> dict[str, str]:
    """The security headers of a docs page (local to these routes: the console has its own)."""
    policy = _REDOC_CSP if redoc else _CSP
    return {
        "Content-Security-Policy": "; ".join(f"{k} {v}" for k, v in policy.items()),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def _page(title: str, static_url: str, head: str, body: str) -> str:
    """The frame both pages share; `head` and `body` are already escaped markup."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/png" href="{escape(static_url)}/favicon.png">
{head}</head>
<body>
{body}</body>
</html>
"""


def swagger_page(title: str, openapi_url: str, static_url: str = STATIC_URL) -> str:
    """The Swagger UI page; swagger-init.js reads the document's URL from data-openapi-url."""
    o, s = escape(openapi_url), escape(static_url)
    head = f'<link rel="stylesheet" href="{s}/swagger-ui.css">\n'
    body = (
        f'<div id="swagger-ui" data-openapi-url="{o}"></div>\n'
        f'<script src="{s}/swagger-ui-bundle.js"></script>\n'
        f'<script src="{s}/swagger-init.js"></script>\n'
    )
    return _page(f"{title} - Swagger UI", static_url, head, body)


def redoc_page(title: str, openapi_url: str, static_url: str = STATIC_URL) -> str:
    """The ReDoc page; the standalone bundle starts itself on the <redoc> element."""
    o, s = escape(openapi_url), escape(static_url)
    body = f'<redoc spec-url="{o}"></redoc>\n<script src="{s}/redoc.standalone.js"></script>\n'
    return _page(f"{title} - ReDoc", static_url, "", body)


def mount(app: FastAPI) -> None:
    """The static assets at STATIC_URL and the two pages (kept out of the OpenAPI document);
    `app` must be made with docs_url=None, redoc_url=None."""
    app.mount(
        STATIC_URL, StaticFiles(directory=VENDORED, packages=[OWN_STATIC]), name="docs-static"
    )

    def urls(request: Request) -> tuple[str, str]:
        root = request.scope.get("root_path", "").rstrip("/")
        return root + (app.openapi_url or ""), root + STATIC_URL

    @app.get("/docs", include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        return HTMLResponse(swagger_page(app.title, *urls(request)), headers=docs_headers())

    @app.get("/redoc", include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        html = redoc_page(app.title, *urls(request))
        return HTMLResponse(html, headers=docs_headers(redoc=True))
