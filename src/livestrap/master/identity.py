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

A reboot without a real serial has no such evidence: the agent keeps the node id in
memory only, and the new boot may get another address. So a report that matches online
nodes by UUID or MAC without evidence, and booted (now - uptime_s) no earlier than each
last reported, looks like their machine after a reboot: it is asked to come back (429)
once they show offline, and then the offline rule makes it the same node. A node that
has reported since that boot is another machine (a clone, or a faked uptime): the
report becomes a node of its own, as without this rule (reboot_wait).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from livestrap.agent.facts import clean_dmi
from livestrap.master.events import normalize_mac

MAX_LISTED = 16  # MACs named in an identity-changed event, each way
MAX_REBOOT_WAIT_S = 3600.0  # the longest Retry-After the agent takes (agent.transport)
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
# Firmware that never had a UUID programmed ships one of these on every board.
PLACEHOLDER_UUIDS = frozenset(
    {
        "03000200-0400-0500-0006-000700080009",
        "00020003-0004-0005-0006-000700080009",
        "12345678-1234-5678-90ab-cddeefaabbcc",
        "01234567-8910-1112-1314-151617181920",
    }
)
NOT_A_NIC = frozenset({"00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff"})


def sane_uuid(value: object) -> str | None:
    """The lower-case UUID if it can tell machines apart; None for blanks and placeholders."""
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1]
    if not UUID_RE.match(text) or text in PLACEHOLDER_UUIDS:
        return None
    if len(set(text.replace("-", ""))) == 1:  # all 0, all f, any one repeated digit
        return None
    return text


def identity_macs(facts: Mapping[str, Any] | None, boot_mac: str | None) -> set[str]:
    """Normalized MACs of the node's NICs plus the PXE MAC; junk entries are skipped."""
    found = [boot_mac]
    nics = facts.get("nics") if facts else None
    if isinstance(nics, list):
        found += [nic.get("mac") for nic in nics if isinstance(nic, dict)]
    macs = {normalize_mac(m) for m in found if isinstance(m, str)}
    return {m for m in macs if m and m not in NOT_A_NIC}


def system_uuid_of(facts: Mapping[str, Any] | None) -> str | None:
    system = facts.get("system") if facts else None
    return sane_uuid(system.get("uuid")) if isinstance(system, dict) else None


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


def identity_of(facts: Mapping[str, Any] | None, boot_mac: str | None) -> Identity:
    return Identity(system_uuid_of(facts), serial_of(facts),
                    frozenset(identity_macs(facts, boot_mac)))  # fmt: skip


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


def reboot_wait(now: float, uptime_s: int | None, owners: Iterable[tuple[float, float]]) -> float:
    """Seconds to wait (at least 1, at most MAX_REBOOT_WAIT_S) until the online nodes a
    report matched without evidence show offline, when it looks like their machine after
    a reboot; 0 when it does not (no uptime, or one of them reported after the report's
    boot). `owners`: (last_seen_at, seconds after it that the node shows offline)."""
    owners = list(owners)
    if uptime_s is None or not owners:
        return 0.0
    booted = now - uptime_s
    if any(last_seen > booted for last_seen, _ in owners):
        return 0.0
    offline_at = max(last_seen + online_s for last_seen, online_s in owners)
    return min(max(1.0, offline_at - now + 1.0), MAX_REBOOT_WAIT_S)  # +1: strictly after
