"""The database of a backup: SQLite through its online backup API (consistent while the
master writes, WAL included), PostgreSQL through pg_dump and pg_restore (custom format).

The PostgreSQL password never goes on a command line (`ps` shows it to every local
user): the URL's parts go into the child's PG* environment variables.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Literal

from sqlalchemy import make_url
from sqlalchemy.engine import URL

from livestrap.errors import ArchiveError, OptionError
from livestrap.run import LineSink, run

Kind = Literal["sqlite", "postgresql"]


def kind_of(db_url: str) -> Kind:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        return "sqlite"
    if url.get_backend_name() == "postgresql":
        return "postgresql"
    raise OptionError(f"cannot back up a {url.get_backend_name()} database (SQLite or PostgreSQL)")


def sqlite_path(db_url: str) -> Path:
    database = make_url(db_url).database
    if not database or database == ":memory:":
        raise OptionError("the SQLite database is in memory: nothing to back up")
    return Path(database)


def pg_env(url: URL) -> dict[str, str]:
    """PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE (and PGOPTIONS) from the URL."""
    env = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password,
        "PGDATABASE": url.database,
    }
    options = url.query.get("options")
    if isinstance(options, str):
        env["PGOPTIONS"] = options
    return {k: v for k, v in env.items() if v}


def copy_sqlite(src: Path, dest: Path) -> None:
    """A consistent copy of the SQLite database `src` (it may be in use) into `dest`."""
    source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        target = sqlite3.connect(dest)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def check_sqlite(path: Path) -> None:
    """Refuse a database file that is not SQLite, is damaged, or is not livestrap's."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            (verdict,) = conn.execute("PRAGMA integrity_check").fetchone()
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
    except sqlite3.Error as err:
        raise ArchiveError(f"the backup's database is not a SQLite database: {err}") from None
    if verdict != "ok":
        raise ArchiveError(f"the backup's database is damaged: {str(verdict)[:200]}")
    if "alembic_version" not in tables:
        raise ArchiveError("the backup's database is not a livestrap database")


def pg_dump(db_url: str, dest: Path, log: LineSink) -> None:
    url = make_url(db_url)
    argv = ["pg_dump", "--format=custom", "--no-owner", "--no-privileges", "--file", str(dest)]
    run(argv, stage="backup", log=log, env=pg_env(url))


def pg_restore(db_url: str, dump: Path, log: LineSink) -> None:
    """Replace the database's objects by the dump's, in one transaction."""
    url = make_url(db_url)
    argv = ["pg_restore", "--clean", "--if-exists", "--no-owner", "--no-privileges",
            "--single-transaction", "--dbname", url.database or "", str(dump)]  # fmt: skip
    run(argv, stage="restore", log=log, env=pg_env(url))
