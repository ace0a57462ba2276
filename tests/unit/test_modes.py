"""File modes: the data dir is made 0750 and the SQLite database (with its -wal and -shm)
0640, new or left looser by an older livestrap: local users read neither the settings (the
root password hash) nor the tokens. An existing data dir is only narrowed (others keep x,
which nginx may need; ACLs are left alone): each secret inside has a mode of its own."""

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
            assert mode(data) == 0o751  # others' x stays (nginx may need it), r goes
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
    [(0o755, 0o751), (0o777, 0o751), (0o751, 0o751), (0o770, 0o750), (0o700, 0o700),
     (0o750, 0o750), (0o710, 0o710), (0o754, 0o750), (0o2775, 0o2751)],
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


def test_an_operators_o_x_survives_every_start(tmp_path: Path) -> None:
    """0751 (nginx's workers pass through to DATA_DIR/images) was narrowed to 0750 at
    each start: the X-Accel hand-off then got 403."""
    data = tmp_path / "data"
    make_state(MasterSettings(data_dir=data)).db.dispose()
    data.chmod(0o751)
    for _ in range(2):
        make_state(MasterSettings(data_dir=data)).db.dispose()
        assert mode(data) == 0o751
    assert ensure_writable_dir(data, "data dir", "--data-dir", private=True) == data
    assert mode(data) == 0o751


def _acl(named_uid: int, mask: int) -> bytes:
    """A POSIX access ACL as the kernel stores it: owner rwx, user `named_uid` x, group
    r-x, the mask, others none."""
    import struct

    entries = [(0x01, 7, 0xFFFFFFFF), (0x02, 1, named_uid), (0x04, 5, 0xFFFFFFFF),
               (0x10, mask, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)]  # fmt: skip
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_an_acl_is_left_alone(tmp_path: Path) -> None:
    """`setfacl -m u:www-data:x DATA_DIR` was undone: chmod g-w rewrites the ACL mask."""
    data = tmp_path / "data"
    data.mkdir()
    acl = _acl(33, 7)
    try:
        os.setxattr(data, "system.posix_acl_access", acl)
    except OSError as err:
        pytest.skip(f"no POSIX ACLs on {tmp_path}: {err.strerror}")
    assert mode(data) == 0o770  # the group bits show the mask
    make_state(MasterSettings(data_dir=data)).db.dispose()
    assert os.getxattr(data, "system.posix_acl_access") == acl
    assert mode(data) == 0o770


def test_secrets_have_modes_of_their_own(tmp_path: Path) -> None:
    """With the data dir open to others' x, every secret inside is closed by its own
    mode: tokens 0600, the database 0640, keys/ and tmp/ 0700, spec/ and logs/ 0750."""
    data = tmp_path / "data"
    state = make_state(MasterSettings(data_dir=data))
    try:
        migrate(state.db.engine)
        assert mode(data) == 0o750
        parts = {p: mode(data / p) for p in ("keys", "tmp", "spec", "logs")}
        assert parts == {"keys": 0o700, "tmp": 0o700, "spec": 0o750, "logs": 0o750}
        assert mode(data / "livestrap.db") == 0o640
        assert mode(data / "admin.token") == mode(data / "discovery.token") == 0o600
    finally:
        state.db.dispose()


def test_loose_private_parts_are_narrowed_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o751)
    for part in ("keys", "tmp", "spec", "logs"):
        (data / part).mkdir()
        (data / part).chmod(0o777)
    make_state(MasterSettings(data_dir=data)).db.dispose()
    parts = {p: mode(data / p) for p in ("keys", "tmp", "spec", "logs")}
    assert parts == {"keys": 0o700, "tmp": 0o700, "spec": 0o750, "logs": 0o750}
    (data / "tmp").rmdir()
    from livestrap.store import tmpdirs

    os.close(tmpdirs.make_file(data / "tmp", "upload")[0])
    assert mode(data / "tmp") == 0o700  # made again by whoever needs it first
