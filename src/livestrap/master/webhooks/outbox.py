"""emit(): one pending delivery per subscribed webhook, in the caller's transaction.

Why an outbox: the event and what caused it commit (or roll back) together, and nobody
waits on a receiver; the dispatcher (master.webhooks.dispatch) sends them afterwards.
The subscriptions are cached per engine, so an emit with no webhook subscribed is a dict
lookup. Changes made in this process are seen at once (invalidate(), called after their
commit); those of another process (a second master, the builder) within CACHE_TTL_S.
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

from sqlalchemy import JSON, Engine, event, insert, literal, select
from sqlalchemy.orm import Session

from livestrap.master.webhooks.events import EVENT_TYPES, cloud_event
from livestrap.master.webhooks.tables import Webhook, WebhookDelivery

CACHE_TTL_S = 5.0
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"

_lock = threading.Lock()
# engine -> (loaded at (monotonic), event type -> ids of the enabled webhooks taking it)
_cache: weakref.WeakKeyDictionary[Engine, tuple[float, dict[str, tuple[str, ...]]]] = (
    weakref.WeakKeyDictionary()
)
_generation = 0  # bumped by invalidate(): a load that started before it is not kept


def invalidate(session: Session | None = None) -> None:
    """Forget the cached subscriptions now, and again once `session` commits (a load
    between the two would read the webhooks as they were before the change)."""
    global _generation
    with _lock:
        _cache.clear()
        _generation += 1
    if session is not None:
        event.listen(session, "after_commit", lambda _s: invalidate(), once=True)


def subscribers(session: Session, event_type: str, now: float | None = None) -> tuple[str, ...]:
    """The ids of the enabled webhooks that take `event_type` (cached, see the module)."""
    engine = session.get_bind()
    if not isinstance(engine, Engine):
        engine = engine.engine
    now = time.monotonic() if now is None else now
    with _lock:
        cached = _cache.get(engine)
        generation = _generation
    if cached is None or now - cached[0] > CACHE_TTL_S:
        by_type: dict[str, list[str]] = {}
        for webhook_id, events in session.execute(
            select(Webhook.id, Webhook.events).where(Webhook.enabled)
        ):
            for name in events if isinstance(events, list) else ():
                by_type.setdefault(str(name), []).append(webhook_id)
        cached = (now, {k: tuple(v) for k, v in by_type.items()})
        with _lock:
            if generation == _generation:
                _cache[engine] = cached
    return cached[1].get(event_type, ())


def emit(
    session: Session,
    event_type: str,
    subject: str | None,
    data: dict[str, Any],
    at: float | None = None,
) -> None:
    """Queue `event_type` for every webhook subscribed to it, in the caller's transaction.

    INSERT ... SELECT from the webhooks table: a webhook deleted since the cache was
    loaded (by another process) gets nothing, and the caller's transaction never fails
    over a foreign key."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    ids = subscribers(session, event_type)
    if not ids:
        return
    at = time.time() if at is None else at
    payload = cloud_event(event_type, subject, data, at)
    rows = select(
        Webhook.id,
        literal(payload["id"]),
        literal(event_type),
        literal(payload, JSON()),
        literal(PENDING),
        literal(0),
        literal(at),
        literal([], JSON()),
        literal(at),
    ).where(Webhook.id.in_(ids), Webhook.enabled)
    columns = ["webhook_id", "event_id", "event_type", "payload", "state", "attempts",
               "next_attempt_at", "attempt_log", "created_at"]  # fmt: skip
    session.execute(insert(WebhookDelivery).from_select(columns, rows))
