"""File modes: the data dir is 0750 and the SQLite database (with its -wal and -shm) 0640,
new or left looser by an older livestrap: local users read neither the settings (the root
password hash) nor the tokens."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from livestrap.master.app import make_state
from livestrap.master.config import MasterSettings
from livestrap.master.db import make_engine, migrate
from livestrap.workdirs import ensure_writable_dir, restrict_dir

pytestmark = [pytest.mark.unit, pytest.mark.security]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_data_dir_and_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    state = make_state(MasterSettings(data_dir=data))
    try:
        migrate(state.db.engine)
        with state.db.engine.connect() as conn:  # WAL mode: -wal and -shm exist while open
            conn.exec_driver_sql("SELECT 1")
            assert mode(data) == 0o750
            assert mode(data / "livestrap.db") == 0o640
            for end in ("-wal", "-shm"):
                assert mode(data / f"livestrap.db{end}") == 0o640
        assert mode(data / "admin.token") == mode(data / "discovery.token") == 0o600
    finally:
        state.db.dispose()


def test_older_loose_modes_are_narrowed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    db = data / "livestrap.db"
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        for file in data.iterdir():
            file.chmod(0o644)
        state = make_state(MasterSettings(data_dir=data))
        try:
            assert mode(data) == 0o750
            assert mode(db) == 0o640
            assert mode(data / "livestrap.db-wal") == 0o640
        finally:
            state.db.dispose()


def test_a_stricter_database_mode_is_kept(tmp_path: Path) -> None:
    db = tmp_path / "x.db"
    db.touch(mode=0o600)
    db.chmod(0o600)
    make_engine(f"sqlite:///{db}").dispose()
    assert mode(db) == 0o600


def test_sqlite_in_memory_and_missing_folder_are_left_to_sqlite(tmp_path: Path) -> None:
    make_engine("sqlite://").dispose()
    make_engine(f"sqlite:///{tmp_path}/nope/x.db").dispose()
    assert not (tmp_path / "nope").exists()


@pytest.mark.parametrize(
    ("before", "after"),
    [(0o755, 0o750), (0o777, 0o750), (0o751, 0o750), (0o770, 0o750), (0o700, 0o700),
     (0o750, 0o750), (0o710, 0o710)],
)  # fmt: skip
def test_private_dir_narrowed(tmp_path: Path, before: int, after: int) -> None:
    path = tmp_path / "data"
    path.mkdir()
    path.chmod(before)
    assert restrict_dir(path) == (before != after)
    assert mode(path) == after


def test_private_dir_made_0750(tmp_path: Path) -> None:
    path = ensure_writable_dir(tmp_path / "a" / "data", "data dir", "--data-dir", private=True)
    assert mode(path) == 0o750
    plain = ensure_writable_dir(tmp_path / "cache", "cache dir", "--cache-dir")
    assert mode(plain) == 0o755  # the cache holds public packages: left as the umask says
