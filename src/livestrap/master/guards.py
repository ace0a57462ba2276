"""The abuse limits of one master, made from its settings (master.config): rate limits
per client address on discovery and /boot, the new-node quota, the per-MAC event budget,
the bounded history and the coalesced refusals. See docs/security.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

from livestrap.master.config import MasterSettings
from livestrap.master.db import Database
from livestrap.master.history import History
from livestrap.master.ratelimit import RateLimiter, address_key, retry_after
from livestrap.master.refusals import RefusalLog


@dataclass
class Guards:
    discovery: RateLimiter  # requests per address
    new_nodes: RateLimiter  # node registrations per address
    boot: RateLimiter  # /boot requests per address
    mac_events: RateLimiter  # /boot and mac-conflict events per MAC
    history: History
    refusals: RefusalLog

    @classmethod
    def from_settings(cls, cfg: MasterSettings, db: Database) -> Guards:
        history = History(cfg.events_per_node, cfg.unattached_events)
        return cls(
            discovery=RateLimiter(cfg.discovery_rate, cfg.discovery_burst),
            new_nodes=RateLimiter.per_window(cfg.new_nodes_per_window, cfg.new_nodes_window_s),
            boot=RateLimiter(cfg.boot_rate, cfg.boot_burst),
            mac_events=RateLimiter(cfg.mac_event_rate, cfg.mac_event_burst),
            history=history,
            refusals=RefusalLog(db, cfg.refused_window_s, history),
        )

    def new_node_wait(self, ip: str | None) -> float:
        return self.new_nodes.take(address_key(ip))

    def event_allowed(self, mac: str) -> bool:
        return self.mac_events.take(mac) == 0


def too_many(wait_s: float, what: str) -> HTTPException:
    """429 with Retry-After and a JSON detail saying which limit and how to change it."""
    headers: dict[str, Any] = {"Retry-After": retry_after(wait_s)}
    return HTTPException(
        status_code=429,
        detail=f"too many {what} from this address; retry in {headers['Retry-After']} s "
        "(limits: docs/security.md)",
        headers=headers,
    )
