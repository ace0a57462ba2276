"""Webhook requests and views of the API (/api/v1/webhooks)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from livestrap.master.webhooks.events import EventType

DeliveryState = Literal["pending", "delivered", "failed"]
MAX_URL = 2000
SECRET_RE = re.compile(r"[\x21-\x7e]{16,256}")  # printable ASCII, no spaces (files, HMACs)
_UNSAFE = re.compile(r"[\x00-\x20\x7f-\x9f]")


def _receiver_url(value: str) -> str:
    """http or https, a host, and nothing a request line cannot carry."""
    if _UNSAFE.search(value):
        raise ValueError("the URL holds a space or a control character")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    try:
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        raise ValueError("the URL's port is not a number from 0 to 65535") from None
    return value


def _secret(value: str | None) -> str | None:
    if value is not None and not SECRET_RE.fullmatch(value):
        raise ValueError("expected 16 to 256 printable ASCII characters, no spaces")
    return value


def _unique(events: list[str]) -> list[str]:
    if len(set(events)) != len(events):
        raise ValueError("an event is listed twice")
    return events


class WebhookCreate(BaseModel):
    """POST /api/v1/webhooks."""

    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, Field(min_length=8, max_length=MAX_URL), AfterValidator(_receiver_url)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=6), AfterValidator(_unique)]
    secret: Annotated[str | None, AfterValidator(_secret)] = Field(
        default=None,
        description="The HMAC key (16 to 256 printable ASCII characters); default: one is "
        "made and returned once, in this answer.",
    )


class WebhookSummary(BaseModel):
    id: str
    url: str
    events: list[EventType]
    enabled: bool
    created_at: datetime


class WebhookCreated(WebhookSummary):
    """The one answer that shows the secret: keep it, it is never shown again."""

    secret: str


class DeliverySummary(BaseModel):
    id: int
    webhook_id: str
    event_id: str
    event_type: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime | None = Field(description="Pending only: the next attempt.")
    last_status: int | None
    last_error: str | None
    attempt_log: list[dict[str, Any]] = Field(
        description="Each attempt: at (epoch seconds), status, error, took_s."
    )
    created_at: datetime
    delivered_at: datetime | None
    payload: dict[str, Any] = Field(description="The CloudEvent sent.")
