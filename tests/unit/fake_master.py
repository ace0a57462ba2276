"""A master faked with httpx's MockTransport, for CLI tests that need no server process."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from livestrap.cli import remote

Handler = Callable[[httpx.Request], Any]


def node_summary(node_id: str, mac: str, boots: int = 1, **extra: Any) -> dict[str, Any]:
    """A row as GET /api/v1/nodes answers it."""
    return {
        "id": node_id,
        "status": "online",
        "system_uuid": None,
        "vendor": "QEMU",
        "product": "Standard PC (i440FX + PIIX, 1996)",
        "serial": "SN1",
        "boot_mac": mac,
        "last_ip": "10.0.2.15",
        "image_id": "img-1",
        "agent_version": "0.1.0",
        "boots": boots,
        "first_seen_at": "2024-05-01T12:00:00Z",
        "last_seen_at": "2024-05-01T12:00:30Z",
        **extra,
    }


@dataclass
class FakeMaster:
    """Routes `METHOD /path` to handlers; records every request and every client made."""

    routes: dict[str, Handler] = field(default_factory=dict)
    requests: list[httpx.Request] = field(default_factory=list)
    clients: list[tuple[str, str | None, Path]] = field(default_factory=list)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get(f"{request.method} {request.url.path}")
        if handler is None:
            return httpx.Response(404, json={"detail": f"no route {request.url.path}"})
        answer = handler(request)
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    def make_client(
        self, master: str, token: str | None, data_dir: Path = Path("/nonexistent")
    ) -> httpx.Client:
        self.clients.append((master, token, data_dir))
        return httpx.Client(base_url=master, transport=httpx.MockTransport(self.handle))

    def paths(self) -> list[str]:
        return [f"{r.method} {r.url.path}" for r in self.requests]


@pytest.fixture
def fake_master(monkeypatch: pytest.MonkeyPatch) -> FakeMaster:
    fake = FakeMaster()
    monkeypatch.setattr(remote, "make_client", fake.make_client)
    return fake


def body(request: httpx.Request) -> Any:
    return json.loads(request.content)
