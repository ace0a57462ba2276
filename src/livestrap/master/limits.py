"""Request body caps, counted while the body is read (Content-Length and chunked alike).

Why: nothing else bounds what a client may send, and a handler that buffers a body
(FastAPI's JSON parsing does) holds all of it in memory. A declared Content-Length over
the cap is answered 413 before any byte is read; a chunked body is cut off (413) as soon
as it passes the cap. Discovery and the JSON APIs get `max_body_bytes`; only the image
import gets `max_import_bytes`, and that route reads nothing before the admin token is
checked (master.routes.images), so the larger cap is never open to anonymous clients; the
console's import reads nothing before its session and CSRF token are (console.images).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestrap.master.config import IMPORT_FRAMING_BYTES, MasterSettings
from livestrap.master.specfiles import MAX_TREE_BYTES

IMPORT_ROUTE = ("POST", "/api/v1/images/import")
CONSOLE_IMPORT_ROUTE = ("POST", "/ui/images/import")
# uploads into <data-dir>/spec (admin; the route reads nothing before the token is checked
# and enforces its own, smaller caps per file and per tree: master.specfiles)
SPEC_FILES_PREFIX = ("PUT", "/api/v1/settings/files/")
SPEC_FILES_BYTES = MAX_TREE_BYTES
# an agent's action result: a 4,096-character tail and a short error, JSON-escaped
ACTION_RESULT_PREFIX = ("POST", "/api/v1/discovery/actions/")
ACTION_RESULT_BYTES = 64 << 10
_CLOSE = {"connection": "close"}  # the rest of the body is never read
# A 413 in another form for some paths (the console's page), else None: the JSON one.
RefusalPage = Callable[[Scope, str], Response | None]


@dataclass(frozen=True)
class Cap:
    """A body cap and the setting that changes it (named in the 413's detail)."""

    limit: int
    setting: str

    def detail(self) -> str:
        return f"request body over {self.limit} bytes (the master's {self.setting})"


class BodyTooLarge(HTTPException):
    """Raised from `receive` once the body passes its cap; an HTTPException so that
    FastAPI's body parsing passes it on and the app answers it as JSON."""

    def __init__(self, cap: Cap) -> None:
        super().__init__(status_code=413, detail=cap.detail(), headers=_CLOSE)


def declared_length(scope: Scope) -> int | None:
    """Content-Length, or None; a value too long to be a size counts as huge (and a
    4,300-digit one must not reach int())."""
    value = Headers(scope=scope).get("content-length")
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()):
        return None  # the server refuses a malformed length itself
    return int(value) if len(value) <= 18 else 1 << 62


class BodyLimit:
    """Pure ASGI middleware: `routes` maps (method, path) to its cap, `prefixes` (method,
    path prefix) to theirs, else `default`; `page` may answer a 413 its own way."""

    def __init__(
        self,
        app: ASGIApp,
        default: Cap,
        routes: Mapping[tuple[str, str], Cap],
        prefixes: Mapping[tuple[str, str], Cap] | None = None,
        page: RefusalPage | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.routes = dict(routes)
        self.prefixes = dict(prefixes or {})
        self.page = page

    def cap_for(self, scope: Scope) -> Cap:
        method, path = scope.get("method", ""), scope.get("path", "")
        cap = self.routes.get((method, path))
        if cap is not None:
            return cap
        for (m, prefix), cap in self.prefixes.items():
            if m == method and path.startswith(prefix):
                return cap
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope)
        declared = declared_length(scope)
        if declared is not None and declared > cap.limit:
            await self._refuse(cap, scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap.limit:
                    raise BodyTooLarge(cap)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, watched_send)
        except BodyTooLarge:  # raised where no handler answered it (outside a route)
            if started:
                raise
            await self._refuse(cap, scope, receive, send)

    async def _refuse(self, cap: Cap, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.page(scope, cap.detail()) if self.page else None
        if response is None:
            response = JSONResponse({"detail": cap.detail()}, status_code=413, headers=_CLOSE)
        await response(scope, receive, send)


IMPORT_SETTING = "LIVESTRAP_MAX_IMPORT_BYTES, plus 1 MiB of multipart framing"


def add_body_limits(app: FastAPI, cfg: MasterSettings, page: RefusalPage | None = None) -> None:
    """The caps of `cfg` on every route of `app` (see the module docstring)."""
    app.add_middleware(
        BodyLimit,
        page=page,
        default=Cap(cfg.max_body_bytes, "LIVESTRAP_MAX_BODY_BYTES"),
        routes={
            route: Cap(cfg.max_import_bytes + IMPORT_FRAMING_BYTES, IMPORT_SETTING)
            for route in (IMPORT_ROUTE, CONSOLE_IMPORT_ROUTE)
        },
        prefixes={
            SPEC_FILES_PREFIX: Cap(SPEC_FILES_BYTES, "spec-file upload cap"),
            ACTION_RESULT_PREFIX: Cap(
                min(ACTION_RESULT_BYTES, cfg.max_body_bytes), "action result cap (64 KiB)"
            ),
        },
    )
