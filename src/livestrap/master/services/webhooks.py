"""Webhooks as the API shows them: register, list, delete, and a webhook's deliveries."""

from __future__ import annotations

import secrets
import time
import uuid
from typing import cast

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from livestrap.errors import NotFoundError
from livestrap.master.lookup import full_id
from livestrap.master.schemas.webhooks import (
    DeliveryState,
    DeliverySummary,
    WebhookCreate,
    WebhookCreated,
    WebhookSummary,
)
from livestrap.master.services.convert import utc, utc_or_none
from livestrap.master.webhooks.events import EventType
from livestrap.master.webhooks.outbox import PENDING, invalidate
from livestrap.master.webhooks.tables import Webhook, WebhookDelivery

MAX_WEBHOOKS = 100  # a fan-out bound: each event is one row per webhook


def webhook_summary(row: Webhook) -> WebhookSummary:
    return WebhookSummary(id=row.id, url=row.url, events=cast(list[EventType], list(row.events)),
                          enabled=row.enabled, created_at=utc(row.created_at))  # fmt: skip


def delivery_summary(row: WebhookDelivery) -> DeliverySummary:
    return DeliverySummary(
        id=row.id,
        webhook_id=row.webhook_id,
        event_id=row.event_id,
        event_type=row.event_type,
        state=cast(DeliveryState, row.state),
        attempts=row.attempts,
        next_attempt_at=utc(row.next_attempt_at) if row.state == PENDING else None,
        last_status=row.last_status,
        last_error=row.last_error,
        attempt_log=list(row.attempt_log or []),
        created_at=utc(row.created_at),
        delivered_at=utc_or_none(row.delivered_at),
        payload=row.payload,
    )


def find_webhook(session: Session, ref: str) -> Webhook:
    """The webhook `ref` names: its id or a unique prefix of one."""
    row = session.get(Webhook, ref)
    if row is None and (webhook_id := full_id(session, Webhook.id, "webhook", ref)) is not None:
        row = session.get(Webhook, webhook_id)
    if row is None:
        raise NotFoundError(f"no webhook {ref}")
    return row


def list_webhooks(session: Session) -> list[WebhookSummary]:
    rows = session.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id))
    return [webhook_summary(row) for row in rows]


def create_webhook(session: Session, body: WebhookCreate) -> WebhookCreated:
    """Register a receiver; the answer carries the secret (made here unless given)."""
    count = len(session.scalars(select(Webhook.id).limit(MAX_WEBHOOKS)).all())
    if count >= MAX_WEBHOOKS:
        raise ValueError(f"at most {MAX_WEBHOOKS} webhooks; delete one first")
    secret = body.secret or secrets.token_urlsafe(32)
    row = Webhook(id=str(uuid.uuid4()), url=body.url, secret=secret, events=list(body.events),
                  enabled=True, created_at=time.time())  # fmt: skip
    session.add(row)
    session.flush()
    invalidate(session)
    return WebhookCreated(**webhook_summary(row).model_dump(), secret=secret)


def delete_webhook(session: Session, ref: str) -> str:
    """Delete a webhook and its deliveries (pending ones are never sent); its id."""
    row = find_webhook(session, ref)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == row.id))
    session.delete(row)
    invalidate(session)
    return row.id


def webhook_deliveries(session: Session, ref: str, limit: int) -> list[DeliverySummary]:
    """A webhook's deliveries, newest first."""
    webhook_id = find_webhook(session, ref).id
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.webhook_id == webhook_id)
        .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
        .limit(limit)
    )
    return [delivery_summary(row) for row in rows]
