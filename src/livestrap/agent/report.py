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

Actions (protocol additions, issue 15; old masters send none). The answer may carry
``"actions": [{"id": "<uuid4>", "kind": "install"|"reinspect"|"reboot"|"poweroff",
"args": {...}}, ...]`` (the master sends at most one today; the agent takes up to 8).
Each is checked again here (livestrap.agent.actions: kinds and arguments exactly as the
master's, extra argument keys refused; an invalid one is reported failed with the
reason and never run), then they run one at a time, in order, and each result goes to::

    POST {url}/api/v1/discovery/actions/{id}/result      (same token and headers)
    {"node_id": str, "status": "succeeded"|"failed", "exit_code": int | null,
     "output_tail": str (last 4096 chars), "took_s": float, "error": str | null (<= 500)}

200: done; 404/409 (unknown, or no longer delivered): logged and dropped; no answer or
5xx: kept in memory (at most 32) and retried with the backoff above before the next
report. After running actions the next report comes FOLLOW_UP_S later, not heartbeat_s,
so the master can hand over the next one. install: apt-get from the master's repository
only (livestrap.agent.aptinstall), with plain heartbeats every heartbeat_s while it runs
(the node stays online; orders in their answers are not taken); if it changed the
agent's own package version, the agent sends the result and exits 0 (systemd's
Restart=always starts the new version, which then reports its version as agent_version).
reinspect: facts are collected now and sent in a report (as with facts_required), then
the result. reboot/poweroff: the result is sent first (up to FOLLOW_UP_TRIES attempts),
then `systemctl reboot|poweroff`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import AGENT_VERSION
from .actions import Executor, Order, Outcome, parse_orders
from .backoff import Backoff, Rng, heartbeat_delay, rate_limited_delay
from .config import AgentConfig
from .results import ResultOutbox
from .runner import subprocess_runner
from .transport import Request, Transport, TransportError, urllib_transport
from .transport import snippet as _snippet

log = logging.getLogger("livestrap.agent")

DISCOVERY_PATH = "/api/v1/discovery"
HEARTBEAT_JOIN_S = 35.0  # a heartbeat in flight when the action ends: the transport's timeout
REJECTED_RETRY_S = 60.0
RECOLLECT_EVERY = 10
FOLLOW_UP_S = 1.0  # after actions ran: ask for the next one soon
FOLLOW_UP_TRIES = 6  # result sends before a reboot/exit goes ahead anyway
SEEN_IDS = 256  # action ids remembered, so one handed over twice still runs once


@dataclass(frozen=True)
class Answer:
    """The master's reply to a report."""

    node_id: str
    heartbeat_s: int | None
    facts_required: bool
    actions: Any = None  # raw: livestrap.agent.actions.parse_orders checks it


def facts_hash(facts: Any) -> str:
    """sha256 of canonical JSON, so master and agent agree without sending the facts."""
    canonical = json.dumps(facts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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
        actions=data.get("actions"),
    )


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
        executor: Executor | None = None,
    ) -> None:
        base = config.require_url().rstrip("/")
        self.url = base + DISCOVERY_PATH
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
        self._backoff = Backoff(self._rng, log)
        self.stopped = False  # set when the agent must exit (its package was upgraded)
        self._executor = executor or Executor(base, subprocess_runner, clock)
        self._orders: deque[Order] = deque()
        self._seen: deque[str] = deque(maxlen=SEEN_IDS)
        self._results = ResultOutbox(base, transport, self._headers, self._rng)

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

    def step(self) -> float:
        """Send pending results, one report, run the actions it brought; returns how long
        to wait before the next step."""
        retry = self._results.flush() if len(self._results) else None
        delay = self._report_once()
        if self.last_ok and self._orders:
            self._run_orders()
            retry = self._results.flush()
            delay = FOLLOW_UP_S
        return delay if retry is None else min(delay, retry)

    def _report_once(self) -> float:
        """Send one report and return how long to wait before the next one."""
        self.last_ok = False
        body = self.build_body()
        request = Request(self.url, json.dumps(body).encode(), self._headers())
        try:
            response = self._transport(request)
        except TransportError as exc:
            return self._backoff.retry(f"master {self.url} unreachable ({exc})")
        status = response.status
        if status == 429 and response.retry_after_s is not None:
            delay = rate_limited_delay(response.retry_after_s, self._rng)
            log.warning("master %s is rate limiting this address; retry in %.1f s", self.url, delay)
            return delay
        if status >= 500:
            return self._backoff.retry(f"master answered HTTP {status}: {_snippet(response.body)}")
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
        self._backoff.reset()
        self.last_ok = True
        for order in parse_orders(answer.actions):
            if order.id in self._seen:
                log.warning("action %s was handed over again; not run twice", order.id)
                continue
            self._seen.append(order.id)
            self._orders.append(order)

    def _run_orders(self) -> None:
        """Run the queued actions one at a time; each result is queued before the next runs."""
        while self._orders and not self.stopped:
            order = self._orders.popleft()
            if order.kind == "install":  # minutes, maybe: keep the node online meanwhile
                outcome = self._with_heartbeats(functools.partial(self._run_one, order))
            else:
                outcome = self._run_one(order)
            self._results.add(order.id, outcome.body(self.node_id))
            if outcome.then is None:
                continue
            for _ in range(FOLLOW_UP_TRIES):  # the result goes first, then reboot or exit
                wait = self._results.flush()
                if wait is None:
                    break
                self._sleep(wait)
            self.stopped = self._executor.follow_up(outcome.then)

    def _run_one(self, order: Order) -> Outcome:
        return self._executor.run(order, self._reinspect)

    def _with_heartbeats(self, work: Callable[[], Outcome]) -> Outcome:
        """`work()` while a thread sends plain heartbeats every heartbeat_s, so a long
        install does not show the node offline (nor make the master announce it). Their
        answers' orders are not taken: the master hands over the next action only after
        this one's result (an order it sent anyway is never run, and ends `lost`)."""
        done = threading.Event()
        body = {"agent_version": AGENT_VERSION, "image_id": self.config.image,
                "boot_mac": self.config.boot_mac, "node_id": self.node_id,
                "facts_hash": self._acked_hash or self._hash, "facts": None,
                "failures": (self._report or {}).get("failures", [])}  # fmt: skip

        def beat() -> None:
            while not done.wait(self.heartbeat_s):
                payload = json.dumps({**body, "uptime_s": int(self._clock())}).encode()
                try:
                    self._transport(Request(self.url, payload, self._headers()))
                except Exception as exc:  # the action's own result path reports the rest
                    log.debug("heartbeat during an action failed: %s", exc)

        thread = threading.Thread(target=beat, name="heartbeat-during-action", daemon=True)
        thread.start()
        try:
            return work()
        finally:
            done.set()
            thread.join(timeout=HEARTBEAT_JOIN_S)

    def _reinspect(self) -> str | None:
        """Collect facts now and send them in a report; why it failed, or None."""
        self._report = None
        self._facts_required = True
        self._report_once()
        return None if self.last_ok else "the report with the new facts was not accepted"

    def run(self, max_steps: int | None = None) -> None:
        """Report until stopped (or `max_steps` times, for tests); never raises from a step."""
        steps = 0
        while (max_steps is None or steps < max_steps) and not self.stopped:
            try:
                delay = self.step()
            except Exception:
                log.exception("report failed unexpectedly; retrying in %.0f s", REJECTED_RETRY_S)
                delay = REJECTED_RETRY_S
            steps += 1
            if not self.stopped:
                self._sleep(delay)
