"""Console sessions expire (find at and after expires_at is None), end, and start afresh;
safe_next keeps the login's redirect inside /ui however the path is encoded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from livestrap.master.console import sessions
from livestrap.master.console.guard import safe_next
from livestrap.master.db import Database, migrate
from livestrap.master.models import ConsoleSession

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'master.db'}")
    migrate(database.engine)
    yield database
    database.dispose()


def started(db: Database, lifetime_s: float = 60) -> str:
    with db.session() as s:
        sid, login = sessions.start(s, lifetime_s, now=T0)
    assert login.expires_at == T0 + lifetime_s
    return sid


def find(db: Database, sid: str | None, now: float) -> sessions.Login | None:
    with db.session() as s:
        return sessions.find(s, sid, now=now)


def test_a_session_lives_until_it_expires(db: Database) -> None:
    sid = started(db)
    login = find(db, sid, T0 + 59.999)
    assert login is not None and login.expires_at == T0 + 60
    assert find(db, sid, T0 + 60) is None  # at expires_at: gone
    assert find(db, sid, T0 + 3600) is None


def test_unknown_missing_and_oversized_ids(db: Database) -> None:
    started(db)
    for sid in (None, "", "nope", "x" * (sessions.MAX_ID_CHARS + 1)):
        assert find(db, sid, T0) is None


def test_end_and_expired_rows_go(db: Database) -> None:
    old, other = started(db, 10), started(db, 100)
    with db.session() as s:
        sessions.end(s, other)
    assert find(db, other, T0) is None
    with db.session() as s:  # a later start drops the expired row
        sessions.start(s, 60, now=T0 + 11)
        assert s.query(ConsoleSession).count() == 1
    assert find(db, old, T0 + 5) is None


def test_the_session_id_is_not_stored(db: Database) -> None:
    sid = started(db)
    with db.session() as s:
        ids = [row.id_sha256 for row in s.query(ConsoleSession)]
    assert ids and sid not in ids


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/ui/", "/ui//evil", "/api/v1/nodes", "/ui\\evil",
    "/ui/../api/v1/nodes", "/ui/./../api", "/ui/nodes/..", "/ui/%2e%2e/api/v1/nodes",
    "/ui/%2E%2E/api", "/ui/.%2e/api", "/ui/%252e%252e/api", "/ui/..%2fapi", "/ui/%2f%2fevil",
    "/ui/%5c..%5capi", "/ui/x%0d%0aSet-Cookie:a", "", None,
])  # fmt: skip
def test_safe_next_refuses(target: str | None) -> None:
    assert safe_next(target) == "/ui/"


@pytest.mark.parametrize("target", ["/ui/", "/ui/nodes?mac=b8:ca", "/ui/nodes/ab..cd",
                                    "/ui/images/diff?a=../x&b=y"])  # fmt: skip
def test_safe_next_keeps_console_paths(target: str) -> None:
    assert safe_next(target) == target
