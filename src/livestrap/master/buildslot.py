"""The one build slot: at most one build worker claims and runs builds at a time.

On SQLite (one master, maybe a `livestrap builder` beside it on the same host) the slot is
a flock on the data dir's worker lock. On PostgreSQL several masters on several hosts share
the queue, so the slot is a session-level advisory lock (`pg_try_advisory_lock`) held on a
connection of its own for as long as the worker claims and runs: PostgreSQL frees it when
that session ends, however the worker died, so a `running` row while the slot is free was
left by a dead worker, whichever host it ran on.

Build `seq` (the queue order) is max + 1; on PostgreSQL the read and the insert happen under
a transaction-level advisory lock, so two masters queueing at once never take one number.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# Advisory locks are per database; a database may hold several livestrap schemas, so each
# lock is (one of these, hashtext(current_schema())): one queue per schema.
BUILD_SLOT_KEY = 0x6C73_0001  # "ls" 1
BUILD_SEQ_KEY = 0x6C73_0002
_TRY = text("SELECT pg_try_advisory_lock(:k, hashtext(current_schema()))")
_UNLOCK = text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))")
# this session still holds lock (key, hashtext(current_schema())): a reconnected connection
# (SQLAlchemy makes a new one after an error) is up, but holds nothing
_STILL_HELD = text(
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND pid = pg_backend_pid() AND classid = CAST(:k AS integer)::oid"
    " AND objid = hashtext(current_schema())::oid AND objsubid = 2"
)
_XACT = text("SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))")


class Slot:
    """The outcome of trying the slot: true when this worker holds it. `alive()` says
    whether it still does, for a build that runs long: PostgreSQL frees an advisory lock
    when its session ends (a database restart, a killed backend), and another master may
    then claim the queue while this build still runs."""

    def __init__(self, held: bool, conn: Connection | None = None, key: int = 0) -> None:
        self.held, self._conn, self._key = held, conn, key

    def __bool__(self) -> bool:
        return self.held

    def alive(self) -> bool:
        if not self.held or self._conn is None:  # a flock lasts as long as this process
            return self.held
        try:
            held = self._conn.scalar(_STILL_HELD, {"k": self._key})
            self._conn.commit()
        except Exception:  # the session is gone, and the lock with it
            return False
        return bool(held)


@contextlib.contextmanager
def worker_lock(path: Path) -> Iterator[Slot]:
    """Try the data dir's worker lock (never waits): whether this worker holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o640)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield Slot(False)
            return
        yield Slot(True)
    finally:
        os.close(fd)


@contextlib.contextmanager
def advisory_slot(engine: Engine, key: int = BUILD_SLOT_KEY) -> Iterator[Slot]:
    """Try PostgreSQL's session advisory lock `key` (never waits) on a connection held
    until the block ends: whether this worker holds it. The connection is idle (no open
    transaction) meanwhile; it is discarded, not pooled, if the unlock fails, so a pooled
    connection never keeps the lock."""
    conn = engine.connect()
    held = False
    try:
        held = bool(conn.scalar(_TRY, {"k": key}))
        conn.commit()
        yield Slot(held, conn, key)
    finally:
        try:
            if held:
                conn.execute(_UNLOCK, {"k": key})
                conn.commit()
            conn.close()
        except Exception:  # the session is gone (and its lock with it) or unusable
            log.warning("build slot not released cleanly; dropping its connection")
            conn.invalidate()
            conn.close()


@contextlib.contextmanager
def build_slot(engine: Engine, lock_path: Path) -> Iterator[Slot]:
    """The slot for this database (schema): the advisory lock on PostgreSQL, else the flock."""
    if engine.dialect.name == "postgresql":
        with advisory_slot(engine) as slot:
            yield slot
    else:
        with worker_lock(lock_path) as slot:
            yield slot


def serialize_seqs(session: Session) -> None:
    """On PostgreSQL, make the rest of this transaction's max(seq) + 1 the only one in the
    cluster until it commits (a transaction-level advisory lock); on SQLite a write
    transaction is alone anyway, and the queue's own lock orders this process."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_XACT, {"k": BUILD_SEQ_KEY})
