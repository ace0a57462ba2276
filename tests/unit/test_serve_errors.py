"""`livestrap serve` refuses what cannot work with one line and exit 1 (2: a malformed value)
before uvicorn starts, whose startup errors would be tracebacks.

The CLI tests run `python -m livestrap serve` as a process: if a check let a mistake
through, the master would start, and the timeout fails the test.
"""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import livestrap
from livestrap import workdirs
from livestrap.errors import OptionError, StartupError
from livestrap.master import preflight as pf
from livestrap.master.db import database_url
from masterproc import free_port

pytestmark = pytest.mark.unit

SRC = Path(livestrap.__file__).resolve().parents[1]


def serve(*args: str) -> tuple[int, str]:
    """Exit status and stderr of `livestrap serve ARGS` (on a free port unless given)."""
    argv = [sys.executable, "-m", "livestrap", "serve", *args]
    if "--listen" not in args:
        argv += ["--listen", f"127.0.0.1:{free_port()}"]
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env)
    return done.returncode, done.stderr


def one_line(err: str) -> str:
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err.strip()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_unreachable_postgresql(tmp_path: Path) -> None:
    url = f"postgresql://x:secret@127.0.0.1:{free_port()}/db"  # nothing listens there
    code, err = serve("--data-dir", str(tmp_path / "d"), "--database-url", url)
    line = one_line(err)
    assert code == 1
    assert line.startswith("error: cannot use the database postgresql://x:***@127.0.0.1:")
    assert "Connection refused; check that the server runs there and --database-url" in line
    assert "secret" not in line


def test_unsupported_database_url(tmp_path: Path) -> None:
    code, err = serve("--data-dir", str(tmp_path / "d"), "--database-url", "mysql://x:y@h/db")
    assert code == 2
    assert one_line(err).startswith(
        "error: database URL mysql://x:***@h/db: mysql is not supported; livestrap keeps its "
        "data in SQLite or PostgreSQL"
    )
    assert not (tmp_path / "d").exists()


def test_data_dir_that_cannot_be_made() -> None:
    code, err = serve("--data-dir", "/proc/livestrap")
    assert code == 1
    assert one_line(err) == (
        "error: cannot create data dir /proc/livestrap: No such file or directory; "
        "pass a writable directory with --data-dir"
    )


def test_address_in_use(tmp_path: Path, busy_port: int) -> None:
    code, err = serve("--data-dir", str(tmp_path / "d"), "--listen", f"127.0.0.1:{busy_port}")
    assert code == 1
    assert one_line(err).startswith(
        f"error: cannot listen on 127.0.0.1:{busy_port}: Address already in use; "
    )
    assert not (tmp_path / "d").exists()  # nothing written before the checks pass


def test_malformed_listen_is_a_usage_error(tmp_path: Path) -> None:
    code, err = serve("--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1")
    assert code == 2
    assert one_line(err) == "error: --listen '127.0.0.1': expected HOST:PORT, e.g. 127.0.0.1:8080"


# -- the checks themselves, in process -----------------------------------------------------


@pytest.mark.parametrize(
    "url", ["sqlite:///x.db", "sqlite://", "postgresql://u@h/d", "postgresql+psycopg://u@h/d"]
)
def test_supported_urls(url: str) -> None:
    assert database_url(url).get_backend_name() in ("sqlite", "postgresql")


@pytest.mark.parametrize("url", ["mysql://u@h/d", "postgres://u@h/d", "nonsense", ""])
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(OptionError, match="sqlite:///PATH or postgresql://"):
        database_url(url)


def test_unwritable_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**_: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(workdirs.tempfile, "TemporaryFile", refuse)
    with pytest.raises(StartupError) as exc:
        workdirs.ensure_writable_dir(tmp_path, "data dir", "--data-dir")
    assert str(exc.value) == (
        f"data dir {tmp_path} is not writable: Permission denied; "
        "pass a writable directory with --data-dir"
    )


def test_sqlite_file_that_cannot_be_opened(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/missing/x.db"
    with pytest.raises(StartupError, match="unable to open database file; check the file"):
        pf.check_database(url)


def test_database_of_a_newer_livestrap(tmp_path: Path) -> None:
    db = tmp_path / "newer.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('ffffffffffff')")
    conn.close()
    with pytest.raises(StartupError, match="'ffffffffffff'; was it made by a newer livestrap"):
        pf.check_database(f"sqlite:///{db}")


def test_a_fresh_sqlite_database_passes(tmp_path: Path) -> None:
    pf.check_database(f"sqlite:///{tmp_path}/fresh.db")
    with sqlite3.connect(tmp_path / "fresh.db") as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    conn.close()


def test_unknown_listen_host() -> None:
    with pytest.raises(StartupError, match=r"cannot resolve 'no-such-host\.invalid'"):
        pf.check_listen("no-such-host.invalid", 8080)
