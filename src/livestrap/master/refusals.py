"""Refused discovery reports, coalesced: one `refused` event per (address, reason, MAC)
per window, carrying how many came and when the last one did.

Why: a node with a stale token retries every minute, and anyone can send reports with
no token at all; one row per refusal lets a single client grow the table without bound.
The open events are remembered in memory (bounded); after a restart, or once the
window has passed, the next refusal starts a new event.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

from livestrap.master.db import Database
from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.models import BootEvent

MAX_KEYS = 10_000
Key = tuple[str, str, str]


class RefusalLog:
    """`record(...)` writes a refusal: a new event, or +1 on the open one of its key."""

    def __init__(
        self,
        db: Database,
        window_s: float,
        history: History | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = db
        self.window_s = window_s
        self.history = history
        self.clock = clock
        self._open: OrderedDict[Key, tuple[int, float]] = OrderedDict()  # event id, started
        self._lock = threading.Lock()  # one refusal write at a time: the count stays exact

    def record(self, reason: str, ip: str | None, mac: str | None, image: str | None) -> None:
        key = (ip or "", reason, mac or "")
        with self._lock, self.db.session() as session:
            now = self.clock()
            last = datetime.fromtimestamp(now, UTC).isoformat()
            found = self._open.pop(key, None)
            if found is not None and self.window_s > 0 and now - found[1] < self.window_s:
                event = session.get(BootEvent, found[0])
                if event is not None:  # not pruned or deleted meanwhile
                    detail = dict(event.detail or {})
                    count = detail.get("count")
                    detail["count"] = (count if isinstance(count, int) else 1) + 1
                    detail["last_at"] = last
                    event.detail = detail
                    event.image_id = image or event.image_id
                    self._open[key] = found
                    return
            event = record_event(
                session,
                "refused",
                mac=mac,
                ip=ip,
                image_id=image,
                detail={"reason": reason, "count": 1, "last_at": last},
                at=now,
                history=self.history,
            )
            session.flush()
            self._open[key] = (event.id, now)
            while len(self._open) > MAX_KEYS:
                self._open.popitem(last=False)
