"""Events counted, not written one by one: refused discovery reports, and /boot events
over their budget. One event per key per window carries how many came (`count`, or
`suppressed`) and when the last one did (`last_at`).

Why: a node with a stale token retries every minute, and anyone can send reports with
no token, or flood a MAC's /boot events; one row per request lets a single client grow
the table without bound, and one write per request (a commit under the database's write
lock) makes a flood of refusals cost the master as much as real reports. So counting is
in memory (bounded: past MAX_KEYS keys, the rest are counted under one catch-all key),
and `flush()` writes the counts in one transaction: every FLUSH_S from the guards'
thread, before a timeline is read, and at shutdown. After a restart, or once the window
has passed, a key's next count starts a new event; a window of 0 means one event per key
per flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from livestrap.master.db import Database
from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.models import BootEvent

log = logging.getLogger("livestrap.master")
MAX_KEYS = 10_000
LOG_LINES_PER_WINDOW = 100  # refusal lines from all addresses together, per window
FLUSH_S = 2.0  # how stale a count in the database may be
Key = tuple[str, ...]


@dataclass
class _Pending:
    """Counts of one key not yet written, and the window they belong to."""

    count: int
    first_at: float
    last_at: float
    window_start: float
    mac: str | None
    ip: str | None
    image_id: str | None
    detail: dict[str, Any]


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


class Tally:
    """`count(key, ...)` notes one occurrence in memory; `flush()` writes them as events
    of `kind`, one per key per window, with the number in `detail[field]`."""

    def __init__(
        self,
        db: Database,
        kind: str,
        field: str,
        window_s: float,
        history: History | None = None,
        clock: Callable[[], float] = time.time,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.db = db
        self.kind = kind
        self.field = field
        self.window_s = window_s
        self.history = history
        self.clock = clock
        self.max_keys = max_keys
        self._pending: OrderedDict[Key, _Pending] = OrderedDict()
        self._ready: list[tuple[Key, _Pending]] = []  # of windows that rolled, unwritten
        self._open: OrderedDict[Key, tuple[int, float]] = OrderedDict()  # event id, start
        self._lock = threading.Lock()  # the counts
        self._flush_lock = threading.Lock()  # one writer at a time: the counts stay exact

    def count(
        self,
        key: Key,
        *,
        mac: str | None = None,
        ip: str | None = None,
        image_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """No database access: cheap enough for the event loop."""
        now = self.clock()
        with self._lock:
            if key not in self._pending and len(self._pending) >= self.max_keys:
                key, mac, ip = ("*", *key[-1:]), None, None  # the catch-all of its kind
            entry = self._pending.get(key)
            rolled = entry is not None and self._rolled(entry.window_start, now)
            if entry is not None and rolled and len(self._ready) < self.max_keys:
                self._ready.append((key, self._pending.pop(key)))
                entry = None
            if entry is None:
                opened = self._open.get(key)
                start = now if opened is None or self._rolled(opened[1], now) else opened[1]
                self._pending[key] = _Pending(1, now, now, start, mac, ip, image_id,
                                              dict(detail or {}))  # fmt: skip
                return
            entry.count += 1
            entry.last_at = now
            entry.image_id = image_id or entry.image_id
            entry.detail.update(detail or {})

    def _rolled(self, start: float, now: float) -> bool:
        return self.window_s <= 0 or now - start >= self.window_s

    def pending(self) -> int:
        with self._lock:
            return sum(e.count for e in self._pending.values()) + sum(
                e.count for _, e in self._ready
            )

    def flush(self) -> int:
        """Write what was counted since the last flush (one transaction); the number of
        events written or updated."""
        with self._flush_lock:
            with self._lock:
                batch = self._ready + list(self._pending.items())
                self._ready, self._pending = [], OrderedDict()
            if not batch:
                return 0
            try:
                with self.db.session() as session:
                    opened = [self._write(session, key, entry) for key, entry in batch]
                    session.flush()
            except Exception:
                self._put_back(batch)
                raise
            with self._lock:
                for key, entry, event in opened:
                    if event is not None:
                        self._open[key] = (event.id, entry.window_start)
                        self._open.move_to_end(key)
                while len(self._open) > self.max_keys:
                    self._open.popitem(last=False)
            return len(batch)

    def _write(
        self, session: Any, key: Key, entry: _Pending
    ) -> tuple[Key, _Pending, BootEvent | None]:
        """+count on the key's open event of the same window, else a new event."""
        opened = self._open.get(key)
        if opened is not None and opened[1] == entry.window_start and self.window_s > 0:
            event = session.get(BootEvent, opened[0])
            if event is not None:  # not pruned or deleted meanwhile
                detail = {**(event.detail or {}), **entry.detail}
                before = detail.get(self.field)
                detail[self.field] = (before if isinstance(before, int) else 0) + entry.count
                detail["last_at"] = _iso(entry.last_at)
                event.detail = detail
                event.image_id = entry.image_id or event.image_id
                return key, entry, None
        event = record_event(
            session,
            self.kind,
            mac=entry.mac,
            ip=entry.ip,
            image_id=entry.image_id,
            detail={**entry.detail, self.field: entry.count, "last_at": _iso(entry.last_at)},
            at=entry.first_at,
            history=self.history,
        )
        return key, entry, event

    def _put_back(self, batch: list[tuple[Key, _Pending]]) -> None:
        """A failed write (disk full): the counts wait for the next flush, within bounds."""
        with self._lock:
            for key, entry in batch:
                if key in self._pending or len(self._pending) >= self.max_keys:
                    continue
                self._pending[key] = entry


class RefusalLog(Tally):
    """`record(reason, ip, mac, image)`: one refused report, counted; coalesced into one
    `refused` event per (address, reason, MAC) per window."""

    def __init__(
        self,
        db: Database,
        window_s: float,
        history: History | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(db, "refused", "count", window_s, history, clock)
        self._logged: OrderedDict[str, float] = OrderedDict()  # address -> line written at
        self._lines: list[float] = []  # when the lines of the current window were written

    def record(self, reason: str, ip: str | None, mac: str | None, image: str | None) -> None:
        self._log_line(reason, ip, mac)
        self.count(
            (ip or "", mac or "", reason),
            mac=mac,
            ip=ip,
            image_id=image,
            detail={"reason": reason},
        )

    def _log_line(self, reason: str, ip: str | None, mac: str | None) -> None:
        """One log line per address per window (at least FLUSH_S), and at most
        LOG_LINES_PER_WINDOW in all: a flood costs the log no more than its counts."""
        now, window = self.clock(), max(self.window_s, FLUSH_S)
        addr = ip or "unknown address"
        with self._lock:
            last = self._logged.get(addr)
            if last is not None and now - last < window:
                return
            self._lines = [t for t in self._lines if now - t < window]
            if len(self._lines) >= LOG_LINES_PER_WINDOW:
                return
            self._lines.append(now)
            self._logged[addr] = now
            self._logged.move_to_end(addr)
            while len(self._logged) > self.max_keys:
                self._logged.popitem(last=False)
        log.warning("refused discovery report from %s: %s%s; more from this address in the "
                    "next %.0f s are counted in its timeline, not logged", addr, reason,
                    f" (MAC {mac})" if mac else "", window)  # fmt: skip
