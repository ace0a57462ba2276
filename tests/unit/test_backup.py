"""livestrap backup / restore: a round trip into a fresh data dir, the modes of secrets,
hostile archives refused, and no restore under a running master."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import time
from pathlib import Path

import pytest

from livestrap.errors import ArchiveError, ConflictError
from livestrap.master.app import make_state
from livestrap.master.backup import TOP, write_backup
from livestrap.master.config import MasterSettings
from livestrap.master.db import migrate
from livestrap.master.models import Node
from livestrap.master.restore import restore_backup
from livestrap.master.running import InUse

pytestmark = pytest.mark.unit


def make_master(data: Path) -> MasterSettings:
    cfg = MasterSettings(data_dir=data)
    state = make_state(cfg)
    migrate(state.db.engine)
    with state.db.session() as s:
        s.add(Node(id="node-1", first_seen_at=1.0, last_seen_at=time.time(), heartbeat_s=30,
                   boots=1, facts={"system": {"vendor": "ACME"}}))  # fmt: skip
    state.db.dispose()
    (cfg.layout.gnupg).mkdir(parents=True, mode=0o700)
    (cfg.layout.gnupg / "private.key").write_text("KEY\n")
    (cfg.spec_dir / "hooks").mkdir(parents=True)
    (cfg.spec_dir / "hooks" / "run.sh").write_text("#!/bin/sh\n")
    return cfg


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_round_trip_into_a_fresh_data_dir(tmp_path: Path) -> None:
    old = make_master(tmp_path / "old")
    config = tmp_path / "livestrap.toml"
    config.write_text('role = "api"\n')
    archive = tmp_path / "b.tar.zst"
    summary = write_backup(old, archive, config, print)
    assert mode(archive) == 0o600
    assert "database.sqlite" in summary.members and "config/livestrap.toml" in summary.members
    new = MasterSettings(data_dir=tmp_path / "new")
    restored_config = tmp_path / "etc.toml"
    restore_backup(new, archive, print, config_dest=restored_config)
    assert restored_config.read_text() == 'role = "api"\n'
    for token in ("admin_token_file", "discovery_token_file"):
        assert getattr(new, token).read_text() == getattr(old, token).read_text()
        assert mode(getattr(new, token)) == 0o600
    assert (new.layout.gnupg / "private.key").read_text() == "KEY\n"
    assert mode(new.layout.gnupg / "private.key") == 0o600 and mode(new.layout.keys) == 0o700
    assert (new.spec_dir / "hooks" / "run.sh").read_text() == "#!/bin/sh\n"
    state = make_state(new)
    migrate(state.db.engine)
    with state.db.session() as s:
        node = s.get(Node, "node-1")
        assert node is not None and node.vendor == "ACME"
    assert state.admin_token == old.admin_token_file.read_text().strip()
    state.db.dispose()
    assert not list(new.layout.tmp.iterdir())  # the staging folder is gone


def test_restore_replaces_what_was_there(tmp_path: Path) -> None:
    old = make_master(tmp_path / "old")
    archive = tmp_path / "b.tgz"
    write_backup(old, archive, None, print)
    other = make_master(tmp_path / "other")
    (other.spec_dir / "stale.txt").write_text("x")
    (other.data_dir / "livestrap.db-wal").write_bytes(b"stale wal")
    restore_backup(other, archive, print)
    assert not (other.spec_dir / "stale.txt").exists()
    assert not (other.data_dir / "livestrap.db-wal").exists()
    assert other.admin_token_file.read_text() == old.admin_token_file.read_text()


def test_no_restore_under_a_running_master(tmp_path: Path) -> None:
    cfg = make_master(tmp_path / "d")
    archive = tmp_path / "b.tar.gz"
    write_backup(cfg, archive, None, print)  # a backup is fine while it runs
    running = InUse(cfg.data_dir)
    try:
        with pytest.raises(ConflictError, match=r"running on .*--force"):
            restore_backup(cfg, archive, print)
        restore_backup(cfg, archive, print, force=True)
    finally:
        running.release()
    restore_backup(cfg, archive, print)


def hostile(tmp_path: Path, build: str) -> Path:
    """A gzip tar of one valid manifest plus the member `build` names."""
    path = tmp_path / f"{build}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:

        def add(name: str, data: bytes = b"x", **kw: object) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            for key, value in kw.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)

        add(f"{TOP}/manifest.json", b'{"format": 1, "database": "sqlite"}')
        if build == "absolute":
            add("/etc/cron.d/evil")
        elif build == "dotdot":
            add(f"{TOP}/spec/../../evil")
        elif build == "symlink":
            add(f"{TOP}/spec/link", type=tarfile.SYMTYPE, linkname="/etc/shadow")
        elif build == "hardlink":
            add(f"{TOP}/spec/link", type=tarfile.LNKTYPE, linkname="/etc/shadow")
        elif build == "device":
            add(f"{TOP}/spec/dev", type=tarfile.CHRTYPE)
        elif build == "unknown":
            add(f"{TOP}/images/x/vmlinuz")
        elif build == "big-token":
            add(f"{TOP}/admin.token", b"a" * 5000)
        elif build == "outside":
            add("elsewhere/spec/x")
        elif build == "duplicate":
            add(f"{TOP}/spec/x")
            add(f"{TOP}/spec/x")
        elif build == "no-database":
            pass
    return path


@pytest.mark.parametrize(
    ("build", "error"),
    [("absolute", "absolute path"), ("dotdot", r"'\.\.'"), ("symlink", "link"),
     ("hardlink", "link"), ("device", "not a regular file"), ("unknown", "not a file of"),
     ("big-token", "5000 bytes"), ("outside", "outside"), ("duplicate", "duplicate"),
     ("no-database", "no database.sqlite")],
)  # fmt: skip
def test_hostile_archives_are_refused(tmp_path: Path, build: str, error: str) -> None:
    cfg = make_master(tmp_path / "d")
    before = cfg.admin_token_file.read_text()
    with pytest.raises(ArchiveError, match=error):
        restore_backup(cfg, hostile(tmp_path, build), print)
    assert cfg.admin_token_file.read_text() == before  # nothing replaced
    assert not list(cfg.layout.tmp.iterdir())
    assert not os.path.lexists("/etc/cron.d/evil")
