"""Console sessions, kept in the database (every master behind one database sees the same
logins, and logout really ends one). The browser holds a random id; the row holds its
sha256, the session's CSRF token and when it expires."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import delete
from sqlalchemy.orm import Session

from livestrap.master.db import rows_changed
from livestrap.master.models import ConsoleSession

COOKIE = "livestrap_session"
MAX_ID_CHARS = 100  # a longer cookie is not ours: no hashing of arbitrary input sizes


@dataclass(frozen=True)
class Login:
    """A live session, as a request sees it."""

    csrf_token: str
    expires_at: float


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(db: Session, lifetime_s: float, now: float | None = None) -> tuple[str, Login]:
    """A new session: the id for the cookie, and the login. Expired rows go on the way."""
    now = time.time() if now is None else now
    db.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= now))
    session_id = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id_sha256=_digest(session_id),
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        expires_at=now + lifetime_s,
    )
    db.add(row)
    return session_id, Login(row.csrf_token, row.expires_at)


def find(db: Session, session_id: str | None, now: float | None = None) -> Login | None:
    """The live session with this id, or None (missing, unknown, expired)."""
    if not session_id or len(session_id) > MAX_ID_CHARS:
        return None
    row = db.get(ConsoleSession, _digest(session_id))
    now = time.time() if now is None else now
    if row is None or row.expires_at <= now:
        return None
    return Login(row.csrf_token, row.expires_at)


def end(db: Session, session_id: str | None) -> None:
    if session_id and len(session_id) <= MAX_ID_CHARS:
        db.execute(delete(ConsoleSession).where(ConsoleSession.id_sha256 == _digest(session_id)))


def end_before(db: Session, cutoff: float) -> int:
    """End every session made before `cutoff` (a new admin token was written then)."""
    return rows_changed(db, delete(ConsoleSession).where(ConsoleSession.created_at < cutoff))
