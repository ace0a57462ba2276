"""What every mapper from a row to a schema needs: times are epoch seconds in the tables
(the same on SQLite and PostgreSQL) and aware UTC datetimes in the answers (ISO 8601)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def utc_or_none(at: float | None) -> datetime | None:
    return None if at is None else utc(at)
