"""The abuse limits of one master, made from its settings (master.config): rate limits
per client address on discovery (reports with the token, and refused ones apart) and
/boot, the new-node quotas (per address and in all), the event budget per MAC and
address, the bounded history, and the counted refusals and suppressed events (written
by one thread every FLUSH_S). See docs/security.md."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException

from livestrap.master.config import MasterSettings
from livestrap.master.db import Database
from livestrap.master.history import History
from livestrap.master.ratelimit import RateLimiter, address_key, retry_after
from livestrap.master.refusals import FLUSH_S, RefusalLog, Tally

log = logging.getLogger("livestrap.master")
WARN_EVERY_S = 60.0  # the new-node ceiling's warning, at most this often


@dataclass
class Guards:
    discovery: RateLimiter  # reports with the discovery token, per address
    refused: RateLimiter  # reports without it, per address (their own, smaller bucket)
    new_nodes: RateLimiter  # node registrations per address
    new_nodes_total: RateLimiter  # node registrations, all addresses together
    boot: RateLimiter  # /boot requests per address
    mac_events: RateLimiter  # /boot and conflict events per (MAC, address)
    history: History
    refusals: RefusalLog
    suppressed: Tally  # events over the budget of their (MAC, address)
    # other upkeep this thread runs every FLUSH_S (the node actions' lost sweep)
    periodic: list[Callable[[], object]] = field(default_factory=list)
    _warned_at: float = -WARN_EVERY_S
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, cfg: MasterSettings, db: Database) -> Guards:
        history = History(cfg.events_per_node, cfg.unattached_events)
        return cls(
            discovery=RateLimiter(cfg.discovery_rate, cfg.discovery_burst),
            refused=RateLimiter(cfg.refused_rate, cfg.refused_burst),
            new_nodes=RateLimiter.per_window(cfg.new_nodes_per_address, cfg.new_nodes_window_s),
            new_nodes_total=RateLimiter.per_window(cfg.new_nodes_total, cfg.new_nodes_window_s),
            boot=RateLimiter(cfg.boot_rate, cfg.boot_burst),
            mac_events=RateLimiter(cfg.mac_event_rate, cfg.mac_event_burst),
            history=history,
            refusals=RefusalLog(db, cfg.refused_window_s, history),
            suppressed=Tally(db, "suppressed", "suppressed", cfg.refused_window_s, history),
        )

    def new_node_wait(self, ip: str | None) -> float:
        """The address's quota first, so that an address refused by its own quota does not
        spend the master's ceiling."""
        wait = self.new_nodes.take(address_key(ip))
        if wait > 0:
            return wait
        wait = self.new_nodes_total.take("*")
        now = time.monotonic()
        if wait > 0 and now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            log.warning("new-node ceiling reached (LIVESTRAP_NEW_NODES_TOTAL per "
                        "LIVESTRAP_NEW_NODES_WINDOW_S): new nodes refused with 429")  # fmt: skip
        return wait

    def event_allowed(self, subject: str, ip: str | None, kind: str = "") -> bool:
        """Whether an event about `subject` (a MAC, or a node id) from `ip` is within its
        budget; one over it is counted in a `suppressed` event instead. Keyed by the
        address too: one address flooding a MAC cannot silence the node's own events."""
        addr = address_key(ip)
        if self.mac_events.take(f"{subject} {addr}") == 0:
            return True
        mac = subject if ":" in subject else None
        self.suppressed.count((addr, subject, "over budget"), mac=mac, ip=ip,
                              detail={"last_kind": kind} if kind else None)  # fmt: skip
        return False

    def flush(self) -> None:
        """Write the counted refusals and suppressed events now."""
        for tally in (self.refusals, self.suppressed):
            tally.flush()

    def _flush_loop(self) -> None:
        while not self._stop.wait(FLUSH_S):
            self.flush_logged()
            for task in self.periodic:
                try:
                    task()
                except Exception:  # a locked or full database: the next round retries
                    log.exception("periodic upkeep failed")

    def flush_logged(self) -> None:
        try:
            self.flush()
        except Exception:  # a full disk: the counts wait for the next round
            log.exception("could not write the counted refusals and suppressed events")

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._flush_loop, name="guards-flush", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """At shutdown: the last counts are written too."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.flush_logged()


def too_many(wait_s: float, what: str) -> HTTPException:
    """429 with Retry-After and a JSON detail saying which limit and how to change it."""
    headers: dict[str, Any] = {"Retry-After": retry_after(wait_s)}
    return HTTPException(
        status_code=429,
        detail=f"too many {what} from this address; retry in {headers['Retry-After']} s "
        "(limits: docs/security.md)",
        headers=headers,
    )
