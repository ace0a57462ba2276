"""Call a master app in-process through raw ASGI, counting the body bytes it pulls.

httpx and Starlette's TestClient hand the whole body over before the app runs, so only
a hand-made `receive` shows how much of a body the master actually read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from fastapi import FastAPI

from livestrap.builder.pipeline import Stage
from livestrap.master.app import create_app
from livestrap.master.config import MasterSettings
from livestrap.master.db import migrate
from livestrap.master.state import AppState


@dataclass
class Answer:
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    pulled: int = 0  # body bytes the app took from `receive`
    chunks_pulled: int = 0

    def json(self) -> Any:
        return json.loads(self.body)


def call(
    app: FastAPI,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> Answer:
    """One request; `chunks` are the body's messages (no Content-Length unless given)."""
    answer = Answer()
    pending = list(chunks or [b""])

    async def receive() -> dict[str, Any]:
        if not pending:
            return {"type": "http.disconnect"}
        chunk = pending.pop(0)
        answer.pulled += len(chunk)
        answer.chunks_pulled += 1
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080),
        "state": {},
    }

    async def run() -> None:
        await app(scope, receive, send)  # type: ignore[arg-type]

    anyio.run(run)
    return answer


@contextmanager
def master_app(
    data_dir: Path, build_stages: list[tuple[str, Stage]] | None = None, **settings: Any
) -> Iterator[tuple[FastAPI, AppState]]:
    """A migrated master app (no lifespan: no build queue) and its state."""
    app = create_app(MasterSettings(data_dir=data_dir, **settings), build_stages=build_stages)
    state: AppState = app.state.livestrap
    migrate(state.db.engine)
    try:
        yield app, state
    finally:
        state.reports.stop()
        state.db.dispose()


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}
