"""The takeover rule: when a report may become an existing node (master.inventory).

The discovery token is public, and what names a machine is not secret either: PXE
clients broadcast their system UUID (DHCP option 97) and their MAC, and many boards (and
every QEMU VM) have no serial or a placeholder one. So a node that is offline is matched
by its UUID or MACs alone (the same machine booting again); a node that is *online* is
matched only with evidence that the report comes from it:

- the same real system serial (not empty, not a placeholder); a different real serial
  is never the same machine;
- else, when either side has no real serial: the report carries the node's id (the
  master gives it only to the agent that registered), or comes from the address the
  node last reported from; a node found by that id alone (none of its MACs or UUID in
  the report) needs the same real serial.

When a report does replace an online node's facts with other identity facts (UUID,
serial, MACs), `identity-changed` goes on the node's timeline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from livestrap.agent.facts import clean_dmi

MAX_LISTED = 16  # MACs named in an identity-changed event, each way


def serial_of(facts: Mapping[str, Any] | None) -> str:
    """The system serial as the takeover rule compares it: "" when none or a placeholder
    (firmware defaults, one character repeated)."""
    system = facts.get("system") if facts else None
    serial = system.get("serial") if isinstance(system, dict) else None
    cleaned = clean_dmi(serial) if isinstance(serial, str) else None
    if not cleaned or len(set(cleaned.lower())) == 1:
        return ""
    return cleaned.lower()


@dataclass(frozen=True)
class Evidence:
    """What a report offers for being an online node it matches by UUID or MAC."""

    serial: str
    node_id: str | None
    ip: str | None

    def is_node(
        self, node_id: str, node_serial: str, node_ip: str | None, by_hint: bool = False
    ) -> bool:
        if self.serial and node_serial:
            return self.serial == node_serial
        if by_hint:  # the id is all that matched: it cannot vouch for itself
            return False
        if self.node_id is not None and self.node_id == node_id:
            return True
        return self.ip is not None and self.ip == node_ip


@dataclass(frozen=True)
class Identity:
    """The facts that name a machine."""

    uuid: str | None
    serial: str
    macs: frozenset[str]


def identity_change(before: Identity, after: Identity) -> dict[str, Any]:
    """What changed, for an `identity-changed` event (bounded); {} when nothing did."""
    detail: dict[str, Any] = {}
    if before.uuid != after.uuid:
        detail["uuid"] = {"from": before.uuid, "to": after.uuid}
    if before.serial != after.serial:
        detail["serial"] = {"from": before.serial or None, "to": after.serial or None}
    added, removed = sorted(after.macs - before.macs), sorted(before.macs - after.macs)
    if added or removed:
        detail["macs"] = {"added": added[:MAX_LISTED], "removed": removed[:MAX_LISTED]}
        if len(added) > MAX_LISTED or len(removed) > MAX_LISTED:
            detail["macs"]["counts"] = {"added": len(added), "removed": len(removed)}
    return detail
