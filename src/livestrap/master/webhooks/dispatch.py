"""The dispatcher: one thread of `livestrap serve` that drains the outbox.

Each round it claims due deliveries (a compare-and-set that leases the row: two masters
never send one attempt twice; a master that dies mid-attempt leaves a lease that runs
out, and the delivery is tried again) and hands them to a small pool. A webhook has at
most one delivery in flight here, so a receiver that hangs holds one worker for at most
its timeout and the others keep going. Deliveries are at least once (a receiver
dedupes by the event id), in no guaranteed order. Every few seconds it also runs the
offline sweep and forgets old deliveries (master.webhooks.sweep).
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select, update

from livestrap import __version__
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, rows_changed
from livestrap.master.webhooks.deadline import Deadline
from livestrap.master.webhooks.events import (
    CONTENT_TYPE,
    SIGNATURE_HEADER,
    backoff_s,
    body_of,
    signature_header,
)
from livestrap.master.webhooks.outbox import DELIVERED, FAILED, PENDING
from livestrap.master.webhooks.sweep import offline_sweep, prune
from livestrap.master.webhooks.tables import ERROR_LEN, Webhook, WebhookDelivery

log = logging.getLogger(__name__)

SNIPPET_BYTES = 200  # of a refusing receiver's answer, kept in last_error
SCAN = 64  # due deliveries read per claim


@dataclass(frozen=True)
class Job:
    id: int
    webhook_id: str
    url: str
    secret: str
    payload: dict[str, Any]
    attempts: int  # before this one
    attempt_log: list[Any]


@dataclass(frozen=True)
class Result:
    status: int | None
    error: str | None
    took_s: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


def lease_s(cfg: MasterSettings) -> float:
    """How long a claimed attempt is ours: connect, send and read, with room to spare."""
    return 4 * cfg.webhook_timeout_s + 30


def claim(db: Database, cfg: MasterSettings, busy: set[str], free: int, now: float) -> list[Job]:
    """Up to `free` due deliveries, one per webhook, none of a webhook in `busy`."""
    jobs: list[Job] = []
    with db.session() as session:
        due = select(WebhookDelivery.id, WebhookDelivery.webhook_id).where(
            WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now
        )
        if busy:
            due = due.where(WebhookDelivery.webhook_id.not_in(busy))
        order = (WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        taken: set[str] = set()
        for delivery_id, webhook_id in session.execute(due.order_by(*order).limit(SCAN)).all():
            if len(jobs) >= free:
                break
            if webhook_id in taken:
                continue
            cas = update(WebhookDelivery).where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.state == PENDING,
                WebhookDelivery.next_attempt_at <= now,
            )
            if rows_changed(session, cas.values(next_attempt_at=now + lease_s(cfg))) != 1:
                continue  # another master took it
            row = session.execute(
                select(WebhookDelivery, Webhook.url, Webhook.secret)
                .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                .where(WebhookDelivery.id == delivery_id)
            ).first()
            if row is None:
                continue
            delivery, url, secret = row
            taken.add(webhook_id)
            jobs.append(Job(delivery.id, webhook_id, url, secret, delivery.payload,
                            delivery.attempts, list(delivery.attempt_log or [])))  # fmt: skip
    return jobs


def send(
    client: httpx.Client, job: Job, now: float | None = None, total_s: float | None = None
) -> Result:
    """One signed POST; redirects are not followed, the answer is read for a snippet only.
    `total_s` bounds the whole attempt (Deadline), not only each read (the client's)."""
    body = body_of(job.payload)
    stamp = int(time.time() if now is None else now)
    headers = {
        "Content-Type": CONTENT_TYPE,
        "User-Agent": f"livestrap/{__version__}",
        SIGNATURE_HEADER: signature_header(job.secret, stamp, body),
        "X-Livestrap-Event": str(job.payload.get("type", "")),
        "X-Livestrap-Delivery": str(job.id),
    }
    started = time.monotonic()
    limit = Deadline(total_s if total_s is not None else float(client.timeout.read or 60))
    try:
        with (
            limit,
            client.stream(
                "POST", job.url, content=body, headers=headers, extensions={"trace": limit.trace}
            ) as resp,  # fmt: skip
        ):
            status = resp.status_code
            snippet = b""
            if not 200 <= status < 300:
                for chunk in resp.iter_raw():
                    snippet += chunk
                    if len(snippet) >= SNIPPET_BYTES:
                        break
    except httpx.TimeoutException as err:
        return Result(None, f"timed out ({type(err).__name__})", time.monotonic() - started)
    except httpx.HTTPError as err:
        took = time.monotonic() - started
        if limit.fired:
            return Result(None, f"timed out (no full answer within {limit.seconds:g} s)", took)
        return Result(None, f"{type(err).__name__}: {err}"[:ERROR_LEN], took)
    took = time.monotonic() - started
    if 200 <= status < 300:
        return Result(status, None, took)
    text = snippet[:SNIPPET_BYTES].decode("utf-8", "replace").replace("\x00", "\ufffd")
    what = "redirect not followed" if 300 <= status < 400 else "refused"
    return Result(status, f"HTTP {status} ({what}): {text}"[:ERROR_LEN], took)


def record(db: Database, cfg: MasterSettings, job: Job, result: Result, now: float) -> str:
    """Write how the attempt went; the delivery's new state."""
    attempts = job.attempts + 1
    entry = {"at": round(now, 3), "status": result.status, "error": result.error,
             "took_s": round(result.took_s, 3)}  # fmt: skip
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status": result.status,
        "last_error": result.error,
        "attempt_log": [*job.attempt_log, entry][-max(cfg.webhook_max_attempts, 1) :],
    }
    if result.ok:
        values.update(state=DELIVERED, delivered_at=now, next_attempt_at=now)
    elif attempts >= cfg.webhook_max_attempts:
        values.update(state=FAILED, next_attempt_at=now)
    else:
        wait = backoff_s(attempts, cfg.webhook_backoff_s, cfg.webhook_backoff_max_s)
        values.update(state=PENDING, next_attempt_at=now + wait)
    with db.session() as session:  # 0 rows: the webhook was deleted meanwhile
        mine = WebhookDelivery.id == job.id, WebhookDelivery.state == PENDING
        session.execute(update(WebhookDelivery).where(*mine).values(**values))
    return str(values["state"])


class Dispatcher:
    """start() with the app, stop() at its end; turn() is one round (tests call it)."""

    def __init__(self, db: Database, cfg: MasterSettings) -> None:
        self.db, self.cfg = db, cfg
        self._busy: set[str] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._client: httpx.Client | None = None
        self._started_at = time.time()
        self._next_sweep = 0.0

    def start(self) -> None:
        if self.cfg.webhook_workers == 0 or self._thread is not None:
            return
        self._stopping.clear()
        self._started_at = time.time()
        workers = self.cfg.webhook_workers
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.cfg.webhook_timeout_s),
            follow_redirects=False,
            # a connection per attempt: Deadline finds the socket at its connect
            limits=httpx.Limits(max_connections=workers, max_keepalive_connections=0),
            trust_env=False,  # no proxy from the environment: the operator named the URL
        )
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="webhook-delivery")
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the loop; attempts in flight finish (each within its timeout)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.turn()
            except Exception:  # the database away for a moment: keep the thread alive
                log.exception("webhook dispatcher error")
            self._wake.wait(self.cfg.webhook_poll_s)
            self._wake.clear()

    def turn(self, now: float | None = None) -> int:
        """Sweep when due, then claim and hand out what is due; how many were handed."""
        now = time.time() if now is None else now
        if now >= self._next_sweep:
            self._next_sweep = now + self.cfg.webhook_sweep_s
            self.sweep(now)
        with self._lock:
            busy = set(self._busy)
        free = self.cfg.webhook_workers - len(busy)
        if free <= 0 or self._pool is None:
            return 0
        jobs = claim(self.db, self.cfg, busy, free, now)
        for job in jobs:
            with self._lock:
                self._busy.add(job.webhook_id)
            self._pool.submit(self._deliver, job)
        return len(jobs)

    def sweep(self, now: float) -> None:
        """node.offline, once every live node has had time to report after our start
        (else a restart after a long stop would announce the whole fleet offline)."""
        cfg = self.cfg
        with self.db.session() as session:
            if now >= self._started_at + cfg.heartbeat_s * cfg.offline_after:
                offline_sweep(session, now, cfg.heartbeat_s, cfg.offline_after)
            prune(session, now, cfg.webhook_keep_s)

    def _deliver(self, job: Job) -> None:
        try:
            assert self._client is not None
            result = send(self._client, job, total_s=self.cfg.webhook_timeout_s)
            state = record(self.db, self.cfg, job, result, time.time())
            if state == FAILED:
                log.warning("webhook %s: delivery %s failed after %d attempts: %s",
                            job.webhook_id, job.id, job.attempts + 1, result.error)  # fmt: skip
        except Exception:
            log.exception("webhook delivery %s", job.id)
        finally:
            with self._lock:
                self._busy.discard(job.webhook_id)
            self._wake.set()  # its webhook may have more due
