"""The HTTP seam: `Transport = Callable[[Request], Response]`, urllib in production.

HTTP error statuses come back as a Response (the reporter decides what a 401 or a
503 means); only "no answer at all" (refused, reset, timeout, DNS) raises
TransportError. Tests swap in a fake transport or point this one at a local server.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Request:
    """One HTTP request, independent of urllib so fakes can inspect it."""

    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "POST"
    timeout_s: float = DEFAULT_TIMEOUT_S


@dataclass(frozen=True)
class Response:
    """Status and raw body of whatever the master answered; `retry_after_s`: its
    Retry-After in seconds (429, 503), when it gave a sane one."""

    status: int
    body: bytes = b""
    retry_after_s: float | None = None


RETRY_AFTER_MAX_S = 3600.0


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as delta-seconds (what the master sends), bounded; else None."""
    text = (value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:
        return None
    return min(float(text), RETRY_AFTER_MAX_S)


class TransportError(Exception):
    """The master gave no HTTP answer (refused, reset, timed out, unresolvable)."""


Transport = Callable[[Request], Response]


def urllib_transport(request: Request) -> Response:
    """Send `request` with urllib (stdlib only: the live image has no requests)."""
    raw = urllib.request.Request(
        request.url, data=request.body, headers=request.headers, method=request.method
    )
    try:
        with urllib.request.urlopen(raw, timeout=request.timeout_s) as answer:
            return Response(status=answer.status, body=answer.read())
    except urllib.error.HTTPError as exc:
        try:
            body = exc.read()
        except (OSError, http.client.HTTPException):
            body = b""
        retry = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
        return Response(status=exc.code, body=body, retry_after_s=retry)
    except urllib.error.URLError as exc:
        raise TransportError(str(exc.reason)) from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc


def snippet(body: bytes, limit: int = 500) -> str:
    """The start of an answer's body, for a log line."""
    return body[:limit].decode("utf-8", errors="replace").strip() or "(empty body)"
