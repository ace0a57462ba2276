"""The boot timeline's writes for /boot: each in one short transaction of its own, not the
request's (a download's end is recorded after its response), and a failing write is
logged, never a failed boot.

UEFI HTTP boot firmware fetches its loader (/boot/efi/NAME) without saying its MAC, so
that `loader` event carries the IP only; the iPXE it loads asks for the script with the
MAC from the same address soon after. The script event then claims the newest unclaimed
loader event of its IP from the last LOADER_CLAIM_S, so it shows on the node's timeline.
One claim per script event: the claims are bounded by the MAC's event budget.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from livestrap.master.db import Database
from livestrap.master.events import node_for_mac, normalize_mac, record_event
from livestrap.master.guards import Guards
from livestrap.master.models import BootEvent
from livestrap.master.services.boot_timeline import LOADER_CLAIM_S

log = logging.getLogger("livestrap.master.routes.boot")  # its name before it moved here


def record_boot_event(db: Database, guards: Guards, kind: str, **fields: Any) -> None:
    mac = normalize_mac(fields.get("mac"))
    if mac is not None and not guards.event_allowed(mac, fields.get("ip"), kind):
        return  # spent: the boot goes on, the event is counted in a `suppressed` one
    try:
        with db.session() as session:
            event = record_event(session, kind, history=guards.history, **fields)
            if kind == "script" and event.mac and event.ip:
                claim_loader(session, event.mac, event.ip, event.at)
    except SQLAlchemyError:
        log.exception("could not record boot event %s %s", kind, fields)


def claim_loader(session: Session, mac: str, ip: str, now: float) -> None:
    """Give the newest unclaimed `loader` event of `ip` since now - LOADER_CLAIM_S the MAC
    (and the node) of the script request that came after it."""
    event = session.scalar(
        select(BootEvent)
        .where(BootEvent.kind == "loader", BootEvent.ip == ip, BootEvent.mac.is_(None),
               BootEvent.node_id.is_(None), BootEvent.at >= now - LOADER_CLAIM_S,
               BootEvent.at <= now)
        .order_by(BootEvent.id.desc())
        .limit(1)
    )  # fmt: skip
    if event is not None:
        event.mac = mac
        event.node_id = node_for_mac(session, mac)
