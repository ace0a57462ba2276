"""Engine, sessions and schema migrations (Alembic) for SQLite or PostgreSQL."""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import (
    URL,
    Connection,
    CursorResult,
    Engine,
    Executable,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import Session, sessionmaker

from livestrap.errors import OptionError

MIGRATIONS = Path(__file__).parent / "migrations"
# What each supported URL scheme connects with (psycopg 3 is the PostgreSQL driver we ship).
DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}
MIGRATE_LOCK_KEY = 0x6C73_0003  # with hashtext(current_schema()): one schema's upgrade
URL_FORMS = "sqlite:///PATH or postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE"


def database_url(url: str) -> URL:
    """`url` parsed, with the driver we connect with; only SQLite and PostgreSQL are
    supported, so anything else is refused here rather than failing on a missing driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise OptionError(f"database URL {url!r} is not a URL; expected {URL_FORMS}") from None
    driver = DRIVERS.get(parsed.drivername)
    if driver is None:
        raise OptionError(
            f"database URL {shown(parsed)}: {parsed.drivername} is not supported; "
            f"livestrap keeps its data in SQLite or PostgreSQL: {URL_FORMS}"
        )
    return parsed.set(drivername=driver)


def shown(url: URL) -> str:
    """The URL for messages: the password is never printed."""
    return url.render_as_string(hide_password=True)


# The database holds the settings (with the root password hash): not for
# other local users. SQLite gives its -wal and -shm files the database file's mode.
SQLITE_FILE_MODE = 0o640


def private_sqlite_file(url: URL) -> None:
    """Make the SQLite file of `url` (0640) before SQLite does (0644 under the usual umask),
    and narrow an existing one and its -wal, -shm and -journal files to 0640."""
    name = url.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return
    path = Path(name)
    if not path.parent.is_dir():
        return  # SQLite says what is wrong when it connects
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, SQLITE_FILE_MODE))
    for file in (path, *(path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & ~SQLITE_FILE_MODE:
                file.chmod(mode & SQLITE_FILE_MODE)


def lenient_text(raw: bytes) -> str:
    """SQLite text as str; bytes that are not UTF-8 become U+FFFD instead of an error.
    SQLite's json_extract turns a stored "\\ud800" escape into such bytes, and one row
    must not make the node list fail for good."""
    return raw.decode("utf-8", "replace")


def make_engine(url: str, connect_timeout_s: int | None = None) -> Engine:
    """An engine tuned per backend: SQLite in WAL mode with a busy timeout.
    `connect_timeout_s` bounds each PostgreSQL connection attempt (libpq: no limit)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        private_sqlite_file(parsed)
        engine = create_engine(parsed, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _: Any) -> None:
            dbapi_conn.text_factory = lenient_text
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    connect_args = {} if connect_timeout_s is None else {"connect_timeout": connect_timeout_s}
    return create_engine(
        parsed, pool_size=10, max_overflow=20, pool_pre_ping=True, connect_args=connect_args
    )


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision. On SQLite the foreign keys are off
    meanwhile: a migration that rebuilds a table (copy, DROP, rename) would otherwise
    cascade the DROP to the rows pointing at it. The pragma is a no-op inside a
    transaction, hence set (and set back) around it. On PostgreSQL the whole upgrade is one
    transaction under an advisory lock: a second master waits, then finds the schema current."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            _pragma(conn, "PRAGMA foreign_keys=OFF")
        try:
            with conn.begin():
                if not sqlite:  # masters starting at once migrate one after another
                    lock = "SELECT pg_advisory_xact_lock(:k, hashtext(current_schema()))"
                    conn.execute(text(lock), {"k": MIGRATE_LOCK_KEY})
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        finally:
            if sqlite:
                _pragma(conn, "PRAGMA foreign_keys=ON")


def _pragma(conn: Connection, statement: str) -> None:
    """Run a pragma outside any transaction (the driver opens none for it)."""
    conn.exec_driver_sql(statement)
    conn.commit()


def rows_changed(session: Session, statement: Executable) -> int:
    """How many rows an UPDATE changed: a compare-and-set (`... WHERE state = 'queued'`)
    won when it is 1, on SQLite and PostgreSQL alike."""
    return cast(CursorResult[Any], session.execute(statement)).rowcount


def schema_is_current(engine: Engine) -> bool:
    """Whether the schema is at the newest revision (a process that does not migrate,
    `livestrap builder`, waits for the API to)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision() == head


class Database:
    def __init__(self, url: str) -> None:
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self.sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
