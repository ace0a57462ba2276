"""Reporting loop: register the node with the master, then heartbeat forever.

Protocol (version 1)::

    POST {url}/api/v1/discovery
    Authorization: Bearer <token>          (omitted when no token is configured)
    Content-Type: application/json

    {
      "agent_version": "0.1.0",
      "image_id": "<livestrap.image= or null>",
      "boot_mac": "aa:bb:cc:dd:ee:ff" | null,   (from BOOTIF=)
      "node_id": null | "<id from the master's last answer>",
      "facts_hash": "<sha256 hex of json.dumps(facts, sort_keys=True, separators=(',', ':'))>",
      "facts": {system, cpu, memory, disks, nics, pci} | null,
      "failures": [{"collector": "...", "error": "..."}],
      "uptime_s": <int, seconds since the node booted (CLOCK_MONOTONIC)>
    }

`facts` is sent until the master has acknowledged that hash (so on the first
report and on its retries), whenever the hash changes, and after an answer with
`facts_required: true`; otherwise it is null and the report is a heartbeat.

The master answers 200 or 201 with ``{"node_id": str, "heartbeat_s": int,
"facts_required": bool}``. The next report comes heartbeat_s later ±20 % jitter;
facts are re-collected every 10th heartbeat. No answer or a 5xx: exponential
backoff with full jitter (1 s base, ×2, 30 s cap), reset by a success. 429 (the
master's per-address rate limit): wait its Retry-After plus up to 20 % jitter, so a
rack that was limited at once does not come back in step. 401/403:
logged at ERROR ("discovery token refused") and retried every 60 s; other 4xx
(and malformed answers) are logged with the body and retried every 60 s. The loop
never ends on its own: a live node has nothing better to do than keep trying.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from . import AGENT_VERSION
from .config import AgentConfig
from .transport import Request, Transport, TransportError, urllib_transport

log = logging.getLogger("livestrap.agent")

DISCOVERY_PATH = "/api/v1/discovery"
BACKOFF_BASE_S = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0
REJECTED_RETRY_S = 60.0
JITTER = 0.2
RECOLLECT_EVERY = 10


class Rng(Protocol):
    """The one method of random.Random the loop needs (tests pass a fixed one)."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class Answer:
    """The master's reply to a report."""

    node_id: str
    heartbeat_s: int | None
    facts_required: bool


def facts_hash(facts: Any) -> str:
    """sha256 of canonical JSON, so master and agent agree without sending the facts."""
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def backoff_delay(attempt: int, rng: Rng) -> float:
    """Full-jitter delay before retry `attempt` (0-based): uniform in [0, min(30, 2**attempt)).

    Full jitter keeps a rack of nodes that lost the master at once from retrying in step.
    """
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * BACKOFF_FACTOR ** min(attempt, 32))
    return rng.random() * ceiling


def heartbeat_delay(heartbeat_s: float, rng: Rng) -> float:
    """heartbeat_s ±20 %, so nodes booted together spread their heartbeats out."""
    return heartbeat_s * (1 - JITTER + 2 * JITTER * rng.random())


def parse_answer(body: bytes) -> Answer:
    """Validate the master's JSON answer; ValueError says what is wrong with it."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"answer is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("node_id"), str):
        raise ValueError("answer has no string node_id")
    heartbeat = data.get("heartbeat_s")
    if heartbeat is not None and (isinstance(heartbeat, bool) or not isinstance(heartbeat, int)):
        raise ValueError(f"heartbeat_s is not an integer: {heartbeat!r}")
    return Answer(
        node_id=data["node_id"],
        heartbeat_s=max(1, heartbeat) if heartbeat is not None else None,
        facts_required=data.get("facts_required") is True,
    )


def _snippet(body: bytes, limit: int = 500) -> str:
    return body[:limit].decode("utf-8", errors="replace").strip() or "(empty body)"


class Reporter:
    """State of the conversation with the master; `step()` sends one report."""

    def __init__(
        self,
        config: AgentConfig,
        collect: Callable[[], dict[str, Any]],
        transport: Transport = urllib_transport,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        rng: Rng | None = None,
    ) -> None:
        self.url = config.require_url().rstrip("/") + DISCOVERY_PATH
        self.config = config
        self.heartbeat_s: float = config.heartbeat_s
        self.node_id: str | None = None
        self.last_ok = False
        self._collect = collect
        self._transport = transport
        self._clock = clock
        self._sleep = sleep
        self._rng: Rng = rng or random.Random()
        self._report: dict[str, Any] | None = None
        self._hash = ""
        self._acked_hash: str | None = None
        self._facts_required = False
        self._since_collect = 0
        self._attempt = 0

    def _refresh(self) -> None:
        if self._report is None or self._since_collect >= RECOLLECT_EVERY:
            self._report = self._collect()
            self._hash = facts_hash(self._report.get("facts"))
            self._since_collect = 0

    def build_body(self) -> dict[str, Any]:
        """The next report's JSON body (collecting facts first when due)."""
        self._refresh()
        assert self._report is not None
        with_facts = self._facts_required or self._acked_hash != self._hash
        return {
            "agent_version": AGENT_VERSION,
            "image_id": self.config.image,
            "boot_mac": self.config.boot_mac,
            "node_id": self.node_id,
            "facts_hash": self._hash,
            "facts": self._report.get("facts") if with_facts else None,
            "failures": self._report.get("failures", []),
            "uptime_s": int(self._clock()),
        }

    def _headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"livestrap-agent/{AGENT_VERSION}",
        }
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        return headers

    def _backoff(self, reason: str) -> float:
        delay = backoff_delay(self._attempt, self._rng)
        self._attempt += 1
        log.warning("%s; retry %d in %.1f s", reason, self._attempt, delay)
        return delay

    def step(self) -> float:
        """Send one report and return how long to wait before the next one."""
        self.last_ok = False
        body = self.build_body()
        request = Request(self.url, json.dumps(body).encode(), self._headers())
        try:
            response = self._transport(request)
        except TransportError as exc:
            return self._backoff(f"master {self.url} unreachable ({exc})")
        status = response.status
        if status == 429 and response.retry_after_s is not None:
            delay = response.retry_after_s * (1.0 + JITTER * self._rng.random())
            log.warning("master %s is rate limiting this address; retry in %.1f s", self.url, delay)
            return delay
        if status >= 500:
            return self._backoff(f"master answered HTTP {status}: {_snippet(response.body)}")
        if status in (401, 403):
            log.error(
                "discovery token refused by %s (HTTP %d): %s; check livestrap.token=, "
                "retrying in %.0f s",
                self.url,
                status,
                _snippet(response.body),
                REJECTED_RETRY_S,
            )
            return REJECTED_RETRY_S
        if status not in (200, 201):
            log.error(
                "master rejected the report (HTTP %d): %s; retrying in %.0f s",
                status,
                _snippet(response.body),
                REJECTED_RETRY_S,
            )
            return REJECTED_RETRY_S
        try:
            answer = parse_answer(response.body)
        except ValueError as exc:
            log.error(
                "unusable answer from %s (%s); retrying in %.0f s", self.url, exc, REJECTED_RETRY_S
            )
            return REJECTED_RETRY_S
        self._accept(answer, sent_facts=body["facts"] is not None)
        return heartbeat_delay(self.heartbeat_s, self._rng)

    def _accept(self, answer: Answer, sent_facts: bool) -> None:
        if answer.node_id != self.node_id:
            log.info("registered with %s as node %s", self.url, answer.node_id)
        elif sent_facts:
            log.info("sent updated facts (hash %s)", self._hash[:12])
        else:
            log.debug("heartbeat accepted (node %s)", answer.node_id)
        self.node_id = answer.node_id
        if answer.heartbeat_s is not None:
            self.heartbeat_s = answer.heartbeat_s
        if sent_facts:
            self._acked_hash = self._hash
        self._facts_required = answer.facts_required
        self._since_collect += 1
        self._attempt = 0
        self.last_ok = True

    def run(self, max_steps: int | None = None) -> None:
        """Report forever (or `max_steps` times, for tests); never raises from a step."""
        steps = 0
        while max_steps is None or steps < max_steps:
            try:
                delay = self.step()
            except Exception:
                log.exception("report failed unexpectedly; retrying in %.0f s", REJECTED_RETRY_S)
                delay = REJECTED_RETRY_S
            steps += 1
            self._sleep(delay)
