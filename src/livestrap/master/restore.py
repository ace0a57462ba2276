"""`livestrap restore FILE`: put a backup (master.backup) back into a data dir.

The archive is hostile until checked: only the names a backup writes are taken (the
manifest, the database, the tokens, files under keys/ and spec/, the config), as regular
files or folders with canonical relative paths: no absolute path, no `..`, no link, no
device; each file has a size cap and the decompressed stream a total one (store.targuard
also refuses crafted tar headers). Everything is unpacked into a staging folder of the
data dir first; only a complete, checked backup replaces what is there. Secrets come back
0600. A running master or builder holds the data dir's running.lock: restore refuses
(master.running) unless --force.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Any, Final, cast

from livestrap.datadir import DB_SUFFIXES
from livestrap.errors import ArchiveError, OptionError
from livestrap.master import dbcopy
from livestrap.master.backup import (
    CONFIG,
    DB_PGDUMP,
    DB_SQLITE,
    FORMAT,
    MANIFEST,
    SECRET_MODE,
    TOP,
    Summary,
    backed_up_files,
    backed_up_trees,
)
from livestrap.master.config import MasterSettings
from livestrap.master.running import exclusive
from livestrap.master.tokens import MAX_TOKEN_FILE_BYTES, read_token
from livestrap.run import LineSink
from livestrap.store.bundle import READ_ERRORS, decompressed, path_problem
from livestrap.store.targuard import TarGuard, warn_if_vulnerable
from livestrap.workdirs import protect_data_dir

MAX_RESTORE_BYTES: Final = 64 << 30  # the decompressed archive (a database of a big fleet)
MAX_MEMBERS: Final = 20_000
MAX_DEPTH: Final = 16
MAX_TREE_FILE: Final = 256 << 20  # one file under keys/ or spec/
SMALL_FILE: Final = 1 << 20  # the manifest and the config
CHUNK: Final = 1 << 20


class _Staging:
    """The checked members, written under `root` (a fresh folder nothing else writes)."""

    def __init__(self, root: Path, cfg: MasterSettings) -> None:
        self.root = root
        layout = cfg.layout
        files = [str(p.relative_to(layout.root)) for p in backed_up_files(layout)]
        self.caps = {MANIFEST: SMALL_FILE, CONFIG: SMALL_FILE, DB_SQLITE: MAX_RESTORE_BYTES,
                     DB_PGDUMP: MAX_RESTORE_BYTES,
                     **dict.fromkeys(files, MAX_TOKEN_FILE_BYTES)}  # fmt: skip
        self.trees = [str(p.relative_to(layout.root)) for p in backed_up_trees(layout)]
        self.count = 0

    def check(self, member: tarfile.TarInfo) -> tuple[str, int] | None:
        """(relative path, size cap) of a file to write; None for a folder; refuse the rest."""
        name = member.name

        def refuse(reason: str) -> ArchiveError:
            return ArchiveError(f"refusing backup member {name[:200]!r}: {reason}")

        self.count += 1
        if self.count > MAX_MEMBERS:
            raise ArchiveError(f"refusing backup: more than {MAX_MEMBERS} members")
        problem = path_problem(name, MAX_DEPTH)
        if problem:
            raise refuse(problem)
        parts = name.split("/")
        if member.issym() or member.islnk():
            raise refuse(f"link (to {member.linkname[:200]!r})")
        if not (member.isdir() or member.type in (tarfile.REGTYPE, tarfile.AREGTYPE)):
            raise refuse("not a regular file or folder")
        if parts[0] != TOP:
            raise refuse(f"outside {TOP}/")
        rel = "/".join(parts[1:])
        in_tree = any(rel == t or rel.startswith(t + "/") for t in self.trees)
        if member.isdir():
            if rel and not in_tree and rel != CONFIG.rpartition("/")[0]:
                raise refuse("not a folder of a backup")
            if rel:  # an empty folder of the backup is restored empty
                (self.root / rel).mkdir(mode=0o700, parents=True, exist_ok=True)
            return None
        cap = self.caps.get(rel, MAX_TREE_FILE if in_tree and rel not in self.trees else -1)
        if cap < 0:
            raise refuse("not a file of a backup")
        if member.size > cap:
            raise refuse(f"{member.size} bytes (at most {cap})")
        return rel, cap

    def write(self, rel: str, cap: int, data: IO[bytes]) -> None:
        path = self.root / rel
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, SECRET_MODE)
        except FileExistsError:
            raise ArchiveError(f"refusing backup: duplicate member {rel!r}") from None
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := data.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise ArchiveError(f"refusing backup member {rel!r}: longer than it says")
                out.write(chunk)


def _unpack(archive: Path, staging: _Staging) -> None:
    warn_if_vulnerable()
    with decompressed(archive) as stream:
        guard = TarGuard(stream, MAX_RESTORE_BYTES)
        try:
            with tarfile.open(fileobj=cast(IO[bytes], guard), mode="r|") as tar:
                for member in tar:
                    found = staging.check(member)
                    if found is not None:
                        data = tar.extractfile(member)
                        assert data is not None  # a regular file
                        staging.write(*found, data)
        except READ_ERRORS as err:
            raise ArchiveError(f"cannot read backup {archive}: {err}") from None


def _manifest(root: Path) -> dict[str, Any]:
    try:
        data = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        raise ArchiveError(f"not a livestrap backup: no readable {MANIFEST}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArchiveError(f"backup format {str(data.get('format'))[:20]!r} unknown here")
    if data.get("database") not in ("sqlite", "postgresql"):
        raise ArchiveError("backup manifest names no database kind")
    return data


def _replace_tree(staged: Path, live: Path, modes: tuple[int, int], trash: Path) -> None:
    dir_mode, file_mode = modes
    for dirpath, _dirs, files in os.walk(staged):
        os.chmod(dirpath, dir_mode)
        for name in files:
            os.chmod(Path(dirpath) / name, file_mode)
    if live.is_symlink() or live.is_file():
        live.unlink()
    elif live.exists():
        os.replace(live, trash / live.name)
    os.replace(staged, live)


def _restore_sqlite(cfg: MasterSettings, staged: Path) -> None:
    dbcopy.check_sqlite(staged)
    target = dbcopy.sqlite_path(cfg.db_url)
    work = target.with_name(target.name + ".restoring")
    work.unlink(missing_ok=True)
    src, dst = sqlite3.connect(staged), sqlite3.connect(work)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    os.chmod(work, 0o640)
    for side in (target.with_name(target.name + s) for s in DB_SUFFIXES if s):
        side.unlink(missing_ok=True)  # a stale write-ahead log would be applied to it
    os.replace(work, target)


def restore_backup(
    cfg: MasterSettings,
    archive: Path,
    log: LineSink,
    *,
    force: bool = False,
    config_dest: Path | None = None,
) -> Summary:
    """Restore `archive` into `cfg`'s data dir (and database); refuses while a master or
    builder runs on it, unless `force`. The config goes to `config_dest` when given."""
    layout = cfg.layout
    target_kind = dbcopy.kind_of(cfg.db_url)
    with exclusive(cfg.data_dir, force=force):
        protect_data_dir(cfg.data_dir)
        work = Path(tempfile.mkdtemp(prefix="restore-", dir=layout.tmp))  # 0700
        try:
            staged = work / "new"
            staged.mkdir(mode=0o700)
            trash = work / "old"
            trash.mkdir(mode=0o700)
            _unpack(archive, _Staging(staged, cfg))
            manifest = _manifest(staged)
            kind = manifest["database"]
            if kind != target_kind:
                raise OptionError(f"the backup holds a {kind} database; this master uses "
                                  f"{target_kind} (restore into the same kind)")  # fmt: skip
            db_name = DB_SQLITE if kind == "sqlite" else DB_PGDUMP
            if not (staged / db_name).is_file():
                raise ArchiveError(f"backup has no {db_name}")
            for path in backed_up_files(layout):
                token = staged / path.relative_to(layout.root)
                if token.exists():
                    os.chmod(token, SECRET_MODE)
                    if read_token(token) is None:
                        raise ArchiveError(f"backup's {path.name} is empty")
            summary = Summary(kind, notes=[f"from livestrap {manifest.get('livestrap', '?')}"])
            if kind == "sqlite":
                _restore_sqlite(cfg, staged / db_name)
            else:
                dbcopy.pg_restore(cfg.db_url, staged / db_name, log)
            summary.members.append(db_name)
            for path in backed_up_files(layout):
                token = staged / path.relative_to(layout.root)
                if token.exists():
                    os.replace(token, path)
                    summary.members.append(path.name)
            for root, modes in backed_up_trees(layout).items():
                tree = staged / root.relative_to(layout.root)
                if tree.is_dir():
                    _replace_tree(tree, root, modes, trash)
                    summary.members.append(f"{root.name}/")
            config = staged / CONFIG
            if config.is_file() and config_dest is not None:
                os.chmod(config, 0o640)
                shutil.move(config, config_dest)
                summary.members.append(str(config_dest))
            elif config.is_file():
                summary.notes.append("the backup holds a config file: pass --config PATH to "
                                     "restore it")  # fmt: skip
        finally:
            shutil.rmtree(work, ignore_errors=True)
    summary.notes.append("images are not in a backup: import each with `livestrap images import`")
    return summary
