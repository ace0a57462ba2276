"""The boot timeline's writes for /boot: each in one short transaction of its own, not the
request's (a download's end is recorded after its response), and a failing write is
logged, never a failed boot."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from livestrap.master.db import Database
from livestrap.master.events import normalize_mac, record_event
from livestrap.master.guards import Guards

log = logging.getLogger("livestrap.master.routes.boot")  # its name before it moved here


def record_boot_event(db: Database, guards: Guards, kind: str, **fields: Any) -> None:
    mac = normalize_mac(fields.get("mac"))
    if mac is not None and not guards.event_allowed(mac, fields.get("ip"), kind):
        return  # spent: the boot goes on, the event is counted in a `suppressed` one
    try:
        with db.session() as session:
            record_event(session, kind, history=guards.history, **fields)
    except SQLAlchemyError:
        log.exception("could not record boot event %s %s", kind, fields)
