"""The inventory's rules that need no database: when a report starts a boot, when a
node counts as online, and the values the inventory service (master.inventory) takes
and gives back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from livestrap.master.history import History
from livestrap.master.models import Node
from livestrap.master.schemas.nodes import ActionOrder, NodeStatus

BOOT_SLACK_S = 10.0
DRIFT = 0.001


def booted_at(at: float, uptime_s: float | None) -> float:
    return at - (uptime_s or 0)


def is_new_boot(now: float, uptime_s: int | None, last: tuple[float, float] | None) -> bool:
    """Whether a report at `now` starts a boot, given (at, booted_at) of the last report."""
    if last is None:
        return True
    last_at, last_booted = last
    slack = BOOT_SLACK_S + DRIFT * max(0.0, now - last_at)
    return booted_at(now, uptime_s) - last_booted > slack


def online_cutoff(now: float, heartbeat_s: int, offline_after: int) -> float:
    """Nodes last seen before this time are offline."""
    return now - heartbeat_s * offline_after


def status_of(last_seen_at: float, cutoff: float) -> NodeStatus:
    return "online" if last_seen_at >= cutoff else "offline"


@dataclass(frozen=True)
class Outcome:
    """What a report did: the node it belongs to and what to tell the agent."""

    node_id: str
    created: bool
    facts_required: bool
    retry_after_s: float = 0.0  # > 0: refused, the address made too many nodes lately
    reason: str = ""  # else why the agent is to retry later (no node id: it is evidence)
    actions: tuple[ActionOrder, ...] = ()  # delivered with this answer (services.actions)


@dataclass(frozen=True)
class Report:
    """The fields of a discovery report the inventory uses (already validated)."""

    agent_version: str | None
    image_id: str | None
    boot_mac: str | None
    node_id: str | None
    facts_hash: str | None
    facts: dict[str, Any] | None
    failures: list[dict[str, Any]]
    uptime_s: int | None
    open_actions: tuple[str, ...] | None = None  # None: an agent older than the field


@dataclass(frozen=True)
class Guard:
    """What register checks besides identity: when a node counts as online, the new-node
    quota of an address (ip -> seconds to wait, 0 = allowed), the event budget of the
    conflict and identity events ((MAC or node id, ip, kind) -> allowed), and the bounded
    history."""

    offline_after: int = 3
    new_node_wait: Callable[[str | None], float] | None = None
    event_allowed: Callable[[str, str | None, str], bool] | None = None
    history: History | None = None

    def allows(self, subject: str, ip: str | None, kind: str) -> bool:
        return self.event_allowed is None or self.event_allowed(subject, ip, kind)


def is_online(node: Node, now: float, offline_after: int) -> bool:
    return node.last_seen_at >= online_cutoff(now, node.heartbeat_s, offline_after)
