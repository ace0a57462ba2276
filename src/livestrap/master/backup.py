"""`livestrap backup FILE`: one tar (gzip, or zstd for .tar.zst) of what a master cannot
make again: the database, the tokens, the signing keys (keys/), the spec dir and the
config file. Not the images (export them one by one: `livestrap images export`), the
package cache, build logs or the APT repo (published again from the keys).

The archive holds secrets (tokens, keys, the root password hash in the settings): it is
written 0600, and appears only when complete. Its layout, under TOP/: MANIFEST, the
database (DB_SQLITE or DB_PGDUMP), and the data dir's own relative paths of the rest
(restore takes nothing else: master.restore).
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from livestrap import __version__
from livestrap.datadir import DataDir
from livestrap.errors import StoreError
from livestrap.master import dbcopy
from livestrap.master.config import MasterSettings
from livestrap.run import LineSink
from livestrap.store.bundle import compression_for, compressor

TOP: Final = "livestrap-backup"
MANIFEST: Final = "manifest.json"
DB_SQLITE: Final = "database.sqlite"
DB_PGDUMP: Final = "database.pgdump"
CONFIG: Final = "config/livestrap.toml"
FORMAT: Final = 1
SECRET_MODE: Final = 0o600


def backed_up_files(layout: DataDir) -> tuple[Path, ...]:
    """The tokens, one file each (what the data dir holds of them)."""
    return (layout.admin_token, layout.discovery_token)


def backed_up_trees(layout: DataDir) -> dict[Path, tuple[int, int]]:
    """Folders taken whole, with the (dir, file) modes restore gives what it writes."""
    return {layout.keys: (0o700, 0o600), layout.spec: (0o750, 0o640)}


@dataclass
class Summary:
    """What went into (or came out of) a backup."""

    database: str
    members: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _tree_files(root: Path) -> Iterator[Path]:
    """Regular files and folders under root, links never followed (nor taken)."""
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        dirnames.sort()
        for name in sorted(dirnames):
            if not (base / name).is_symlink():
                yield base / name
        for name in sorted(filenames):
            path = base / name
            if path.is_file() and not path.is_symlink():
                yield path


def _add(tar: tarfile.TarFile, path: Path, arcname: str, mode: int | None = None) -> None:
    info = tar.gettarinfo(str(path), f"{TOP}/{arcname}")
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    if mode is not None:
        info.mode = mode
    if info.isdir():
        tar.addfile(info)
        return
    with path.open("rb") as fh:
        tar.addfile(info, fh)


def write_backup(
    cfg: MasterSettings, dest: Path, config_file: Path | None, log: LineSink
) -> Summary:
    """Write the backup of `cfg`'s master to `dest` (.tar.gz, .tgz or .tar.zst)."""
    layout = cfg.layout
    comp = compression_for(dest)
    if comp not in ("gz", "zst"):
        raise StoreError(f"{dest.name}: a backup is .tar.gz, .tgz or .tar.zst (compressed)")
    kind = dbcopy.kind_of(cfg.db_url)
    work = Path(tempfile.mkdtemp(prefix=".livestrap-backup-", dir=dest.parent))  # 0700
    part = dest.with_name(f".{dest.name}.part")
    summary = Summary(kind)
    try:
        db_name = DB_SQLITE if kind == "sqlite" else DB_PGDUMP
        dump = work / db_name
        if kind == "sqlite":
            dbcopy.copy_sqlite(dbcopy.sqlite_path(cfg.db_url), dump)
        else:
            dbcopy.pg_dump(cfg.db_url, dump, log)
        manifest = work / MANIFEST
        manifest.write_text(json.dumps({
            "format": FORMAT, "livestrap": __version__, "database": kind,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
        }, indent=1) + "\n")  # fmt: skip
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, SECRET_MODE)
        with os.fdopen(fd, "wb") as raw:
            os.fchmod(raw.fileno(), SECRET_MODE)
            with compressor(raw, comp) as sink, tarfile.open(fileobj=sink, mode="w|") as tar:
                _add(tar, manifest, MANIFEST, 0o644)
                _add(tar, dump, db_name, SECRET_MODE)
                summary.members += [MANIFEST, db_name]
                for path in backed_up_files(layout):
                    if path.is_file() and not path.is_symlink():
                        rel = str(path.relative_to(layout.root))
                        _add(tar, path, rel, SECRET_MODE)
                        summary.members.append(rel)
                for root in backed_up_trees(layout):
                    if root.is_dir() and not root.is_symlink():
                        summary.members.append(f"{root.relative_to(layout.root)}/")
                        for path in (root, *_tree_files(root)):
                            _add(tar, path, str(path.relative_to(layout.root)))
                if config_file is not None and config_file.is_file():
                    _add(tar, config_file, CONFIG, 0o640)
                    summary.members.append(CONFIG)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(part, dest)
    except OSError as err:
        raise StoreError(f"cannot write backup {dest}: {err}") from None
    finally:
        part.unlink(missing_ok=True)
        shutil.rmtree(work, ignore_errors=True)
    summary.notes.append("images are not in a backup: `livestrap images export ID FILE` each")
    return summary


def default_config_file() -> Path | None:
    """The config file a backup takes: LIVESTRAP_CONFIG, else the packaged one if present."""
    named = os.environ.get("LIVESTRAP_CONFIG")
    path = Path(named) if named else Path("/etc/livestrap/livestrap.toml")
    return path if path.is_file() else None
