"""The node inventory: who a reporting machine is, when it booted, whether it is online.

Identity: the SMBIOS system UUID when it is sane, else the MACs of its NICs (any MAC
already known names the node). The same machine booting again updates its node.

New boot rule: a report *with facts* starts a boot when the node is new, has no
`report` event yet, or its boot time (now - uptime_s) is later than the boot time of
its last `report` event by more than BOOT_SLACK_S (+0.1 % of the time since that
event, for clock drift). A restarted agent or re-sent facts keep the same boot time,
so they do not count; a reboot moves it by at least the previous boot's uptime.

Takeover rules (the discovery token is public, so a report may lie): a report is
matched by its sane UUID; failing that, by its MACs or its node_id. An *online* node
(heard from within offline_after heartbeats) is matched either way only with evidence
that the report is from it (master.identity: the same real serial; without one, the
node's id or its last address). A UUID an online node keeps is not given to the
reporting node (`uuid-conflict` on both timelines). A MAC another node owns moves to
the reporting node only when that node is offline; then `mac-moved` goes on both
timelines. When it is online the MAC stays and both get `mac-conflict`. A report that
changes an online node's UUID, serial or MACs leaves `identity-changed` on its timeline.
A report that matched online nodes without evidence but booted after they last reported
(their machine, rebooted) makes no node: 429 until they show offline (reboot_wait).
"""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.identity import (
    Evidence,
    identity_change,
    identity_macs,
    identity_of,
    reboot_wait,
    sane_uuid,
    serial_of,
    system_uuid_of,
)
from livestrap.master.models import BootEvent, Node, NodeMac
from livestrap.master.queries import node_macs, node_query, timeline

# the views live in master.queries, the identity rules in master.identity
__all__ = ["identity_macs", "node_macs", "node_query", "sane_uuid", "timeline"]
from livestrap.master.schemas.nodes import NodeStatus

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


@dataclass(frozen=True)
class Found:
    """What find_node found: the node (or None), who owns each MAC now (mac -> node id),
    and the node that keeps the report's UUID when the takeover rule refused it."""

    node: Node | None
    owners: dict[str, str]
    uuid_owner: Node | None = None


def find_node(
    session: Session,
    system_uuid: str | None,
    macs: set[str],
    boot_mac: str | None = None,
    hint: str | None = None,
    may_take: Callable[[Node, bool], bool] | None = None,
) -> Found:
    """The node this hardware is, and who owns its UUID and MACs now.

    UUID first; then the owners of its MACs (the boot MAC's owner, then the one with
    most MACs), skipping nodes that have another sane UUID (a NIC moved to a new box);
    then `hint`, the agent's node_id, only when no MAC is known. Any node found is
    skipped unless `may_take(node, by_hint)` (the takeover rule, master.identity).
    """
    owners: dict[str, str] = {}
    if macs:
        rows = session.execute(select(NodeMac.mac, NodeMac.node_id).where(NodeMac.mac.in_(macs)))
        owners = {mac: node_id for mac, node_id in rows}
    uuid_owner = None
    if system_uuid:
        uuid_owner = session.scalar(select(Node).where(Node.system_uuid == system_uuid))
        if uuid_owner is not None and (may_take is None or may_take(uuid_owner, False)):
            return Found(uuid_owner, owners)
    counts = Counter(owners.values())
    boot_owner = owners.get(boot_mac or "")
    candidates = sorted(counts, key=lambda n: (n != boot_owner, -counts[n], n))
    by_hint = not candidates and hint is not None
    if not candidates and hint:
        candidates = [hint]
    for node_id in candidates:
        node = session.get(Node, node_id)
        if node is None or (system_uuid is not None and node.system_uuid is not None):
            continue
        if may_take is None or may_take(node, by_hint):
            return Found(node, owners, uuid_owner)
    return Found(None, owners, uuid_owner)


def _claim_macs(
    session: Session,
    node_id: str,
    macs: set[str],
    owners: dict[str, str],
    now: float,
    ip: str | None,
    guard: Guard,
) -> None:
    """Attach MACs to the node (one owner per MAC). A MAC of another node moves only when
    that node is offline (`mac-moved` on both timelines); else it stays (`mac-conflict`)."""
    for mac in sorted(macs):
        owner = owners.get(mac)
        if owner is None:
            session.add(NodeMac(mac=mac, node_id=node_id))
            continue
        if owner == node_id:
            continue
        other = session.get(Node, owner)
        if other is not None and is_online(other, now, guard.offline_after):
            if guard.allows(mac, ip, "mac-conflict"):
                _on_both(session, "mac-conflict", mac, ip, owner, node_id, now, guard)
            continue
        session.execute(update(NodeMac).where(NodeMac.mac == mac).values(node_id=node_id))
        _on_both(session, "mac-moved", mac, ip, owner, node_id, now, guard)


def _on_both(
    session: Session,
    kind: str,
    mac: str | None,
    ip: str | None,
    owner: str,
    claimer: str,
    now: float,
    guard: Guard,
    detail: dict[str, Any] | None = None,
) -> None:
    detail = detail or {"mac": mac, "owner": owner, "claimed_by": claimer}
    if kind == "mac-moved":
        detail = {"mac": mac, "from": owner, "to": claimer}
    for node_id in (owner, claimer):
        record_event(
            session, kind, mac=mac, ip=ip, node_id=node_id, detail=detail, at=now,
            history=guard.history,
        )  # fmt: skip


REBOOTED = (
    "an online node has this machine's UUID or MACs; if this machine rebooted, it becomes "
    "that node again once the node shows offline"
)


def _rebooted(session: Session, report: Report, ip: str | None, owner: Node, found: Found,
              now: float, guard: Guard, wait: float) -> None:  # fmt: skip
    """One (budgeted) conflict event on the owner's timeline: a report that looks like it
    after a reboot was asked to come back once it shows offline (`claimed_by`: none)."""
    if found.uuid_owner is not None and found.uuid_owner.id == owner.id:
        kind, subject, mac = "uuid-conflict", owner.id, report.boot_mac
        detail: dict[str, Any] = {"uuid": owner.system_uuid}
    else:
        mac = min((m for m, o in found.owners.items() if o == owner.id),
                  key=lambda m: (m != report.boot_mac, m))  # fmt: skip
        kind, subject, detail = "mac-conflict", mac, {"mac": mac}
    if guard.allows(subject, ip, kind):
        detail.update(owner=owner.id, claimed_by=None, retry_after_s=math.ceil(wait))
        record_event(session, kind, mac=mac, ip=ip, node_id=owner.id, detail=detail, at=now,
                     history=guard.history)  # fmt: skip


def _last_report(session: Session, node_id: str) -> tuple[float, float] | None:
    row = session.execute(
        select(BootEvent.at, BootEvent.detail)
        .where(BootEvent.node_id == node_id, BootEvent.kind == "report")
        .order_by(BootEvent.at.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    uptime = row.detail.get("uptime_s") if isinstance(row.detail, dict) else None
    return row.at, booted_at(row.at, uptime if isinstance(uptime, int | float) else None)


def register(
    session: Session,
    report: Report,
    ip: str | None,
    heartbeat_s: int,
    now: float | None = None,
    guard: Guard | None = None,
) -> Outcome:
    """Create or update the node a report with facts comes from; record a new boot."""
    now = time.time() if now is None else now
    guard = guard or Guard()
    system_uuid = system_uuid_of(report.facts)
    macs = identity_macs(report.facts, report.boot_mac)
    evidence = Evidence(serial_of(report.facts), report.node_id, ip)
    held: dict[str, Node] = {}  # online nodes it matched, refused for want of evidence
    unlike = False  # an online node it matched has another real serial

    def may_take(found: Node, by_hint: bool) -> bool:
        nonlocal unlike
        if not is_online(found, now, guard.offline_after):
            return True
        node_serial = serial_of(found.facts)
        if evidence.is_node(found.id, node_serial, found.last_ip, by_hint):
            return True
        unlike = unlike or bool(evidence.serial and node_serial)
        if not by_hint:
            held[found.id] = found
        return False

    found = find_node(session, system_uuid, macs, report.boot_mac, report.node_id, may_take)
    node, owners, uuid_owner = found.node, found.owners, found.uuid_owner
    created = node is None
    if node is None and held and not unlike:
        online_s = [(n.last_seen_at, n.heartbeat_s * guard.offline_after) for n in held.values()]
        wait = reboot_wait(now, report.uptime_s, online_s)
        if wait > 0:
            _rebooted(session, report, ip, next(iter(held.values())), found, now, guard, wait)
            return Outcome("", created=False, facts_required=True, retry_after_s=wait,
                           reason=REBOOTED)  # fmt: skip
    if node is None and guard.new_node_wait is not None:
        wait = guard.new_node_wait(ip)
        if wait > 0:
            return Outcome("", created=False, facts_required=True, retry_after_s=wait)
    own_uuid = system_uuid if uuid_owner is None else None  # an online node keeps its UUID
    changed: dict[str, Any] = {}
    if node is None:
        node = Node(id=str(uuid.uuid4()), first_seen_at=now, boots=0, system_uuid=own_uuid)
        session.add(node)
    else:
        if is_online(node, now, guard.offline_after):
            before = identity_of(node.facts, node.boot_mac)
            changed = identity_change(before, identity_of(report.facts, report.boot_mac))
        if own_uuid and node.system_uuid is None:
            node.system_uuid = own_uuid
    new_boot = created or is_new_boot(now, report.uptime_s, _last_report(session, node.id))
    node.boot_mac = report.boot_mac or node.boot_mac
    node.last_ip = ip
    node.image_id = report.image_id
    node.agent_version = report.agent_version
    node.facts = report.facts or {}
    node.facts_hash = report.facts_hash
    node.failures = report.failures
    node.heartbeat_s = heartbeat_s
    node.last_seen_at = now
    if new_boot:
        node.boots += 1
    session.flush()  # the node row must exist before its MACs and events point at it
    _claim_macs(session, node.id, macs, owners, now, ip, guard)
    if uuid_owner is not None and guard.allows(uuid_owner.id, ip, "uuid-conflict"):
        detail = {"uuid": system_uuid, "owner": uuid_owner.id, "claimed_by": node.id}
        _on_both(session, "uuid-conflict", report.boot_mac, ip, uuid_owner.id, node.id, now,
                 guard, detail)  # fmt: skip
    if changed and guard.allows(node.id, ip, "identity-changed"):
        record_event(session, "identity-changed", mac=report.boot_mac, ip=ip, node_id=node.id,
                     detail=changed, at=now, history=guard.history)  # fmt: skip
    if new_boot:
        record_event(
            session,
            "report",
            mac=report.boot_mac,
            ip=ip,
            node_id=node.id,
            image_id=report.image_id,
            detail={"uptime_s": report.uptime_s, "boot": node.boots, "new_node": created},
            at=now,
            history=guard.history,
        )
    session.flush()
    return Outcome(node.id, created, facts_required=False)


def heartbeat(
    session: Session,
    report: Report,
    ip: str | None,
    heartbeat_s: int,
    offline_after: int,
    now: float | None = None,
    history: History | None = None,
) -> Outcome:
    """A report without facts: note that the node is alive; ask for facts if needed."""
    now = time.time() if now is None else now
    if report.node_id is None:
        return Outcome("", created=False, facts_required=True)
    values: dict[str, Any] = {"last_seen_at": now, "last_ip": ip, "heartbeat_s": heartbeat_s}
    if report.image_id is not None:
        values["image_id"] = report.image_id
    cutoff = online_cutoff(now, heartbeat_s, offline_after)
    # The usual heartbeat, of a node that is online, is this one statement.
    online = session.execute(
        update(Node)
        .where(Node.id == report.node_id, Node.last_seen_at >= cutoff)
        .values(**values)
        .returning(Node.facts_hash),
        execution_options={"synchronize_session": False},
    ).first()
    if online is not None:
        return Outcome(report.node_id, created=False, facts_required=_stale(report, online[0]))
    row = session.execute(
        select(Node.facts_hash, Node.last_seen_at).where(Node.id == report.node_id)
    ).first()
    if row is None:  # deleted, or another master's id: the facts will make a node again
        return Outcome(report.node_id, created=False, facts_required=True)
    session.execute(
        update(Node).where(Node.id == report.node_id).values(**values),
        execution_options={"synchronize_session": False},
    )
    if row.last_seen_at < cutoff:
        record_event(
            session,
            "heartbeat-resumed",
            mac=report.boot_mac,
            ip=ip,
            node_id=report.node_id,
            image_id=report.image_id,
            detail={"silent_s": round(now - row.last_seen_at, 1)},
            at=now,
            history=history,
        )
    return Outcome(report.node_id, created=False, facts_required=_stale(report, row.facts_hash))


def _stale(report: Report, stored_hash: str | None) -> bool:
    """Whether the agent's facts differ from the ones the master keeps."""
    return report.facts_hash is not None and report.facts_hash != stored_hash
