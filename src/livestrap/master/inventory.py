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

import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from livestrap.master.config import MasterSettings
from livestrap.master.events import record_event
from livestrap.master.guards import Guards
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
from livestrap.master.inventory_heartbeat import heartbeat
from livestrap.master.inventory_rules import (
    BOOT_SLACK_S,
    DRIFT,
    Guard,
    Outcome,
    Report,
    booted_at,
    is_new_boot,
    is_online,
    online_cutoff,
    status_of,
)
from livestrap.master.logsetup import printable
from livestrap.master.models import BootEvent, Node, NodeMac
from livestrap.master.queries import node_macs, node_query, timeline
from livestrap.master.schemas.nodes import DiscoveryReport
from livestrap.master.services.actions import claim, queue_action
from livestrap.master.services.rules import apply_rules
from livestrap.master.webhooks.notices import node_reported

log = logging.getLogger("livestrap.master")

# the views live in master.queries, the identity rules in master.identity, the rules
# without a database in master.inventory_rules, the heartbeat in master.inventory_heartbeat
__all__ = [
    "BOOT_SLACK_S",
    "DRIFT",
    "Guard",
    "Outcome",
    "Report",
    "booted_at",
    "heartbeat",
    "identity_macs",
    "is_new_boot",
    "is_online",
    "node_macs",
    "node_query",
    "online_cutoff",
    "sane_uuid",
    "status_of",
    "timeline",
]


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
    previous_hash = None if node is None else node.facts_hash  # node.facts_changed
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
    node_reported(session, node, created, previous_hash, at=now)
    if created:  # the rules name and tag it, and may queue its first action
        apply_rules(session, node, "register", queue_action)
        log.info("new node %s: MAC %s, %s %s", node.id, report.boot_mac or "-",
                 printable(node.vendor or "-"), printable(node.product or "-"))  # fmt: skip
    return Outcome(node.id, created, facts_required=False)


REPORT_FIELDS = {"agent_version", "image_id", "boot_mac", "node_id", "facts_hash", "uptime_s"}


def report_of(body: DiscoveryReport) -> Report:
    """The fields of a validated discovery report that the inventory uses."""
    return Report(
        **body.model_dump(include=REPORT_FIELDS),
        facts=body.facts_dict(),
        failures=[failure.model_dump() for failure in body.failures],
        open_actions=None if body.open_actions is None else tuple(body.open_actions),
    )


def report_applier(
    cfg: MasterSettings, guards: Guards | None = None
) -> Callable[[Session, Report, str | None], Outcome]:
    """What the report writer does with one report: register it (with facts) or take it
    as a heartbeat (without)."""
    guard = Guard(offline_after=cfg.offline_after)
    if guards is not None:
        guard = Guard(
            offline_after=cfg.offline_after,
            new_node_wait=guards.new_node_wait,
            event_allowed=guards.event_allowed,
            history=guards.history,
        )

    def apply(session: Session, report: Report, ip: str | None) -> Outcome:
        if report.facts is None:
            outcome = heartbeat(
                session, report, ip, cfg.heartbeat_s, cfg.offline_after, history=guard.history
            )
        else:
            outcome = register(session, report, ip, cfg.heartbeat_s, guard=guard)
        if not outcome.node_id or outcome.retry_after_s > 0:
            return outcome
        # the node's next action, marked delivered in this transaction (at most once)
        orders = claim(session, outcome.node_id, cfg.action_timeout_s, history=guard.history,
                       open_actions=report.open_actions)  # fmt: skip
        return replace(outcome, actions=tuple(orders)) if orders else outcome

    return apply
