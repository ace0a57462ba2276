"""A pure ASGI middleware timing each HTTP request by route template (`/boot/images/
{image_id}/{name}`, never the raw URL: label values stay bounded), and counting the body
bytes of boot files the master sends itself (Range answers included; an X-Accel hand-off
sends none, nginx reports its own: master.routes.boot).

Pure ASGI rather than BaseHTTPMiddleware: no Request/Response objects per request, no
task per streamed body. The router writes the matched route into the scope dict this
middleware passed on, so it is read after the call; a request no route matched is "none".
"""

from __future__ import annotations

import time
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestrap import bootpaths
from livestrap.master.metrics import Metrics

METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
ARTIFACT_ROUTES: Final = frozenset(
    {bootpaths.PREFIX + bootpaths.FILE_ROUTE, bootpaths.PREFIX + bootpaths.MAC_FILE_ROUTE}
)
NO_ROUTE: Final = "none"
MAX_ROUTES: Final = 1000  # prefixes cached (the app has about a hundred routes)


def route_template(scope: Scope, prefixes: dict[int, str] | None = None) -> str:
    """The path template of the route that answered, else "none". The route's own path
    lacks the prefix of the include_router that added it (FastAPI >= 0.16x keeps included
    routers nested), so the prefix is the part of the URL before what its regex matches;
    `prefixes` caches it per route (a route is included once: one prefix each)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str) or not path:
        return NO_ROUTE
    if prefixes is not None and id(route) in prefixes:
        return prefixes[id(route)] + path
    regex, url = getattr(route, "path_regex", None), scope.get("path", "")
    prefix = ""
    if regex is not None and not regex.match(url):
        cut = [i for i, c in enumerate(url) if c == "/" and i > 0 and regex.match(url[i:])]
        prefix = url[: cut[0]] if cut else ""
    if prefixes is not None and len(prefixes) < MAX_ROUTES:
        prefixes[id(route)] = prefix
    return prefix + path


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._prefixes: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0
        first_byte: float | None = None
        body_bytes = 0

        async def timed_send(message: Message) -> None:
            nonlocal status, first_byte, body_bytes
            if message["type"] == "http.response.start":
                status = int(message["status"])
                first_byte = time.perf_counter() - started
            elif message["type"] == "http.response.body":
                body_bytes += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, timed_send)
        finally:
            self._observe(scope, status, first_byte, time.perf_counter() - started, body_bytes)

    def _observe(
        self, scope: Scope, status: int, first_byte: float | None, seconds: float, body: int
    ) -> None:
        method = scope.get("method", "")
        method = method if method in METHODS else "other"
        route = route_template(scope, self._prefixes)
        code = f"{status // 100}xx" if status else "none"  # none: no answer (disconnect)
        self.metrics.http_seconds.labels(method, route, code).observe(seconds)
        if first_byte is not None:
            self.metrics.http_first_byte.labels(method, route).observe(first_byte)
        if route in ARTIFACT_ROUTES and status in (200, 206):
            name = (scope.get("path_params") or {}).get("name")
            if isinstance(name, str):
                self.metrics.sent(name, body)
