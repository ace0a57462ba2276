"""Boot events: every step of a node's boot, recorded against its MAC (or its IP).

Kinds, in the order a boot produces them: `loader` (GET /boot/efi/NAME by UEFI HTTP boot
firmware: recorded against the IP only, and given the MAC of the script request that
follows from that IP: master.services.boot_events), `script` (GET /boot/ipxe), `kernel`, `initrd`,
`squashfs-start`, `squashfs-end` (artifact downloads), `report` (first discovery report
of a boot), `heartbeat-resumed`, `refused` (discovery reports with a wrong token from one
address, coalesced: see master.refusals), `suppressed` (events over the budget of their
MAC and address, counted the same way), `mac-moved` (a MAC went to another node; on both
nodes' timelines), `mac-conflict` (a report claimed a MAC an online node owns; it
stayed; `claimed_by` null: the report looked like the node rebooted and was told to
come back once it shows offline), `uuid-conflict` (the same for a system UUID) and
`identity-changed` (a report changed an online node's UUID, serial or MACs); `node-edited`
(an operator changed its name or tags), `rules-applied` (rules named it, tagged it or
queued an action) and `rule-conflict` (a rule's name belongs to another node). History is
bounded per node and per MAC (master.history). A node action's steps are
`action-delivered`, `action-succeeded`, `action-failed`, `action-lost`
(master.services.actions) and `action-expired` (master.services.action_expiry).
"""

from __future__ import annotations

import re
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.master.history import History
from livestrap.master.models import BootEvent, NodeMac

MAC_RE = re.compile(
    r"^(?:01(?P<prefix>[:-]))?"  # PXELINUX's BOOTIF: 01 (Ethernet), then the MAC
    r"(?P<mac>[0-9a-f]{2}(?P<sep>[:-]?)[0-9a-f]{2}(?:(?P=sep)[0-9a-f]{2}){4})\Z"
)
KINDS = (
    "loader",
    "script",
    "kernel",
    "initrd",
    "squashfs-start",
    "squashfs-end",
    "report",
    "heartbeat-resumed",
    "refused",
    "suppressed",
    "mac-moved",
    "mac-conflict",
    "uuid-conflict",
    "identity-changed",
    "node-edited",
    "rules-applied",
    "rule-conflict",
    # node actions (master.services.actions)
    "action-delivered",
    "action-succeeded",
    "action-failed",
    "action-lost",
    "action-expired",
)


def normalize_mac(value: str | None) -> str | None:
    """'AA-BB-CC-DD-EE-FF', 'aabbccddeeff', '01-aa-bb-...' (BOOTIF) -> 'aa:bb:cc:dd:ee:ff'.

    One separator throughout (':', '-' or none) and the BOOTIF prefix `01` only with the
    same separator; anything else is None. agent.config.normalize_mac keeps the same rules
    (the agent cannot import this); tests/unit/test_mac_normalizers.py holds both to one table.
    """
    found = MAC_RE.match(value.strip().lower()) if value else None
    if found is None or found["prefix"] not in (None, found["sep"]):
        return None
    digits = found["mac"].replace(found["sep"], "") if found["sep"] else found["mac"]
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def node_for_mac(session: Session, mac: str | None) -> str | None:
    if not mac:
        return None
    return session.scalar(select(NodeMac.node_id).where(NodeMac.mac == mac))


def record_event(
    session: Session,
    kind: str,
    *,
    mac: str | None = None,
    ip: str | None = None,
    node_id: str | None = None,
    image_id: str | None = None,
    detail: dict[str, Any] | None = None,
    at: float | None = None,
    history: History | None = None,
) -> BootEvent:
    """Add one event; the node is found from the MAC when not given. With `history`,
    the node's (or MAC's) older events are pruned when due."""
    assert kind in KINDS, kind
    mac = normalize_mac(mac)
    event = BootEvent(
        at=time.time() if at is None else at,
        kind=kind,
        mac=mac,
        ip=ip,
        node_id=node_id or node_for_mac(session, mac),
        image_id=image_id,
        detail=detail or {},
    )
    session.add(event)
    if history is not None:
        history.recorded(session, event)
    return event
