"""The pure part of webhooks: event types, the CloudEvents envelope, the body bytes, the
signature and the retry schedule. No I/O, so each has an exact-output test."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import uuid
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal, get_args

EventType = Literal[
    "node.registered",
    "node.offline",
    "node.facts_changed",
    "action.finished",
    "build.finished",
    "image.activated",
]
EVENT_TYPES: tuple[str, ...] = get_args(EventType)
TYPE_PREFIX = "io.livestrap."
CONTENT_TYPE = "application/cloudevents+json"
SIGNATURE_HEADER = "X-Livestrap-Signature"
SIGNATURE_VERSION = "v1"


@cache
def source() -> str:
    """The CloudEvents `source`: this master (one per host)."""
    return f"livestrap://{socket.gethostname() or 'master'}"


def rfc3339(at: float) -> str:
    """Epoch seconds as RFC 3339 UTC with milliseconds: 2024-05-01T12:00:00.250Z."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def cloud_event(
    event_type: str,
    subject: str | None,
    data: dict[str, Any],
    at: float,
    *,
    event_id: str | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """A CloudEvents 1.0 event (structured mode). `subject` is left out when None: an
    optional attribute is never null."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": origin or source(),
        "type": TYPE_PREFIX + event_type,
    }
    if subject is not None:
        event["subject"] = subject
    event.update(time=rfc3339(at), datacontenttype="application/json", data=data)
    return event


def body_of(event: dict[str, Any]) -> bytes:
    """The bytes sent, the same at every attempt (what the signature covers)."""
    return json.dumps(event, separators=(",", ":"), ensure_ascii=True).encode()


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """hex HMAC-SHA256, keyed with the secret's UTF-8, of b"<timestamp>." + body."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    """X-Livestrap-Signature: t=<unix seconds>,v1=<hex>."""
    return f"t={timestamp},{SIGNATURE_VERSION}={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance_s: float = 300) -> bool:
    """What a receiver does (docs/webhooks.md): the header's t is recent and a v1 matches."""
    fields = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key == "t"]
    stamp = stamps[0] if len(stamps) == 1 else ""
    if not (stamp.isascii() and stamp.isdigit()) or abs(now - int(stamp)) > tolerance_s:
        return False  # "²".isdigit() is True, int("²") raises: ASCII digits only
    expected = signature(secret, int(stamp), body).encode()
    return any(hmac.compare_digest(value.encode(errors="replace"), expected)
               for key, _, value in fields if key == "v1")  # fmt: skip


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """The wait after the `attempts`-th failed attempt: base, 2 base, 4 base, ... capped."""
    return float(min(max_s, base_s * 2 ** min(max(attempts - 1, 0), 40)))
