"""Webhooks without a network: the signature's exact bytes, the CloudEvents envelope, the
retry schedule, the outbox's cache and the offline sweep."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, select

from livestrap.master.db import Database
from livestrap.master.models import Node
from livestrap.master.schemas.webhooks import WebhookCreate
from livestrap.master.webhooks import outbox
from livestrap.master.webhooks.events import (
    backoff_s,
    body_of,
    cloud_event,
    rfc3339,
    signature_header,
    verify,
)
from livestrap.master.webhooks.sweep import offline_sweep, prune
from livestrap.master.webhooks.tables import Webhook, WebhookDelivery

pytestmark = pytest.mark.unit

AT = 1714564800.25


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # printf '1714564800.{}' | openssl dgst -sha256 -hmac s3cret
    assert signature_header("s3cret", 1714564800, b"{}") == (
        "t=1714564800,v1=98c851e457b09591c0b45dd85b071bf8302a8177b729baeb5682811fc2a361ee"
    )


def test_a_receiver_checks_secret_body_and_age() -> None:
    header = signature_header("s3cret", 1714564800, b"{}")
    assert verify("s3cret", header, b"{}", now=1714564800 + 299)
    assert not verify("s3cret", header, b"{}", now=1714564800 + 301)  # a replay
    assert not verify("other", header, b"{}", now=1714564800)
    assert not verify("s3cret", header, b"{ }", now=1714564800)
    for hostile in ("t=\u00b2,v1=ab", "t=1714564800,v1=\u00e9\u00e9", "t=,v1=", "v1=ab", ""):
        assert not verify("s3cret", hostile, b"{}", now=1714564800)  # False, never raises
    assert not verify("s3cret", "v1=00", b"{}", now=1714564800)


def test_the_cloudevent_in_structured_mode() -> None:
    ev = cloud_event("node.offline", "n-1", {"node_id": "n-1"}, AT, event_id="e-1",
                     origin="livestrap://m1")  # fmt: skip
    assert body_of(ev) == (
        b'{"specversion":"1.0","id":"e-1","source":"livestrap://m1",'
        b'"type":"io.livestrap.node.offline","subject":"n-1","time":"2024-05-01T12:00:00.250Z",'
        b'"datacontenttype":"application/json","data":{"node_id":"n-1"}}'
    )
    assert "subject" not in cloud_event("image.activated", None, {}, AT)  # never null
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="unknown event"):
        cloud_event("node.exploded", None, {}, AT)


def test_the_backoff_doubles_up_to_its_cap() -> None:
    assert [backoff_s(n, 30, 3600) for n in range(1, 9)] == [
        30, 60, 120, 240, 480, 960, 1920, 3600,
    ]  # fmt: skip
    assert backoff_s(10_000, 30, 3600) == 3600


def _hook(db: Database, hook_id: str, events: list[str], enabled: bool = True) -> None:
    with db.session() as s:
        s.add(Webhook(id=hook_id, url="http://127.0.0.1:9/", secret="s" * 16, events=events,
                      enabled=enabled, created_at=AT))  # fmt: skip
    outbox.invalidate()


def _deliveries(db: Database) -> list[tuple[str, str]]:
    with db.session() as s:
        rows = s.execute(select(WebhookDelivery.webhook_id, WebhookDelivery.event_type))
        return sorted((a, b) for a, b in rows)


def test_emit_writes_one_delivery_per_subscribed_enabled_webhook(db: Database) -> None:
    _hook(db, "w1", ["node.registered", "node.offline"])
    _hook(db, "w2", ["node.offline"])
    _hook(db, "w3", ["node.offline"], enabled=False)
    with db.session() as s:
        outbox.emit(s, "node.offline", "n-1", {"node_id": "n-1"})
        outbox.emit(s, "build.finished", "b-1", {})
    assert _deliveries(db) == [("w1", "node.offline"), ("w2", "node.offline")]
    with db.session() as s:
        (payload,) = s.scalars(select(WebhookDelivery.payload).where(
            WebhookDelivery.webhook_id == "w1"))  # fmt: skip
        assert payload["type"] == "io.livestrap.node.offline" and payload["subject"] == "n-1"


def test_emit_costs_no_query_while_the_cache_says_nobody_listens(db: Database) -> None:
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    outbox.invalidate()
    with db.session() as s:
        outbox.emit(s, "node.registered", "n-1", {})  # loads the (empty) cache
    statements.clear()
    with db.session() as s:
        for _ in range(100):
            outbox.emit(s, "node.registered", "n-1", {})
    assert statements == []


def test_a_webhook_deleted_behind_the_cache_gets_nothing_and_breaks_nothing(
    db: Database,
) -> None:
    _hook(db, "w1", ["node.registered"])
    with db.session() as s:
        assert outbox.subscribers(s, "node.registered") == ("w1",)
    with db.session() as s:  # another process deletes it: no invalidate() here
        s.delete(s.get(Webhook, "w1"))
    with db.session() as s:
        outbox.emit(s, "node.registered", "n-1", {})
    assert _deliveries(db) == []


def _node(node_id: str, last_seen: float) -> Node:
    return Node(id=node_id, facts={}, failures=[], heartbeat_s=10, first_seen_at=last_seen,
                last_seen_at=last_seen, boot_mac="52:54:00:00:00:01")  # fmt: skip


def test_the_offline_sweep_announces_each_silence_once(db: Database) -> None:
    _hook(db, "w1", ["node.offline"])
    now = 10_000.0  # heartbeat 10 s, offline after 3: the cutoff is now - 30
    with db.session() as s:
        s.add_all([_node("old", now - 500), _node("a", now - 25), _node("b", now - 5)])
    with db.session() as s:
        assert offline_sweep(s, now, 10, 3) == 0  # the first sweep: the past is not news
    with db.session() as s:
        assert offline_sweep(s, now + 10, 10, 3) == 1  # a is silent 35 s now
        assert offline_sweep(s, now + 11, 10, 3) == 0
    with db.session() as s:
        s.get(Node, "a").last_seen_at = now + 12  # a comes back ...
    with db.session() as s:
        assert offline_sweep(s, now + 30, 10, 3) == 1  # b went silent
        assert offline_sweep(s, now + 50, 10, 3) == 1  # ... and goes silent again
    with db.session() as s:
        subjects = s.scalars(select(WebhookDelivery.payload).order_by(WebhookDelivery.id))
        assert [p["subject"] for p in subjects] == ["a", "b", "a"]


def test_the_sweep_moves_on_without_subscribers(db: Database) -> None:
    with db.session() as s:
        s.add(_node("a", 100.0))
    with db.session() as s:
        offline_sweep(s, 100.0, 10, 3)
        assert offline_sweep(s, 200.0, 10, 3) == 0
    _hook(db, "w1", ["node.offline"])
    with db.session() as s:
        assert offline_sweep(s, 300.0, 10, 3) == 0  # a went silent when nobody listened
    assert _deliveries(db) == []


def test_prune_keeps_pending_and_recent_deliveries(db: Database) -> None:
    _hook(db, "w1", ["node.offline"])
    with db.session() as s:
        for n, (state, at) in enumerate([("pending", 0.0), ("delivered", 0.0),
                                         ("failed", 0.0), ("delivered", 90.0)]):  # fmt: skip
            s.add(WebhookDelivery(webhook_id="w1", event_id=f"e{n}", event_type="node.offline",
                                  payload={}, state=state, attempts=1, next_attempt_at=at,
                                  attempt_log=[], created_at=at))  # fmt: skip
    with db.session() as s:
        assert prune(s, 100.0, 50.0) == 2
        assert prune(s, 100.0, 0) == 0  # 0: keep forever


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "file:///etc/passwd", "events": ["node.offline"]}, "url"),
        ({"url": "http:///nohost", "events": ["node.offline"]}, "url"),
        ({"url": "http://h:99999/", "events": ["node.offline"]}, "url"),
        ({"url": "http://h/\r\nX: y", "events": ["node.offline"]}, "url"),
        ({"url": "http://h/", "events": ["node.offline", "node.offline"]}, "events"),
        ({"url": "http://h/", "events": ["node.offline"], "secret": "sixteen chars, sp"}, "secret"),
    ],
)
def test_webhook_requests_are_checked(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        WebhookCreate.model_validate(body)
    assert err.value.errors()[0]["loc"][0] == field
