"""The data dir's layout: the one place that spells the names of what lives in it.

The master, the builder, the store and the CLI all take their paths under the data dir
from a `DataDir`, so the layout is written once. The names are on disk in existing data
dirs: renaming one here strands what is already stored there (tests/unit/test_datadir.py
pins them). Nothing is created here; see livestrap.workdirs for the modes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The SQLite database and the side files SQLite keeps next to it (spec paths refuse them).
DB_SUFFIXES = ("", "-wal", "-shm", "-journal")


@dataclass(frozen=True)
class DataDir:
    """Paths under one data dir (`root`): images, tmp, cache, logs, repo, keys, tokens,
    database, VMs, spec files and locks."""

    root: Path

    # -- the image store (livestrap.store) -----------------------------------------------

    @property
    def images(self) -> Path:
        """`images/<id>/`: the committed images."""
        return self.root / "images"

    @property
    def active(self) -> Path:
        """The symlink to the active image (`images/<id>`, relative)."""
        return self.root / "active"

    @property
    def tmp(self) -> Path:
        """Scratch space on the store's filesystem (named and swept by store.tmpdirs)."""
        return self.root / "tmp"

    @property
    def store_lock(self) -> Path:
        return self.root / "store.lock"

    # -- builds ---------------------------------------------------------------------------

    @property
    def in_use_lock(self) -> Path:
        """Held (shared) by every master and builder running on this data dir; restore
        takes it exclusively (master.running)."""
        return self.root / "running.lock"

    @property
    def build_lock(self) -> Path:
        """One build at a time per data dir (builder.workspace)."""
        return self.root / "build.lock"

    @property
    def worker_lock(self) -> Path:
        """Held by the build worker that claims and runs a build (one per data dir; a
        `running` row nobody holds it for was left by a dead worker)."""
        return self.root / "builder.lock"

    @property
    def cache(self) -> Path:
        """The builds' package cache unless --cache-dir names another."""
        return self.root / "cache"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def build_log(self, name: str) -> Path:
        """The log of one build: `name` is the master's build id or the CLI's time stamp."""
        return self.logs / f"build-{name}.log"

    @property
    def spec(self) -> Path:
        """The one folder specs sent through the API may name files in."""
        return self.root / "spec"

    # -- the master's APT repository and its signing key ---------------------------------

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def repo_lock(self) -> Path:
        return self.root / "repo.lock"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    @property
    def gnupg(self) -> Path:
        """The repository's signing key (GNUPGHOME)."""
        return self.keys / "gnupg"

    # -- the master's secrets and state ---------------------------------------------------

    @property
    def admin_token(self) -> Path:
        return self.root / "admin.token"

    @property
    def discovery_token(self) -> Path:
        return self.root / "discovery.token"

    @property
    def db(self) -> Path:
        """The SQLite database, unless the master is given another database URL."""
        return self.root / "livestrap.db"

    def db_files(self) -> tuple[Path, ...]:
        """The database and SQLite's side files (write-ahead log, shared memory, journal)."""
        return tuple(self.db.with_name(self.db.name + suffix) for suffix in DB_SUFFIXES)

    # -- virtual nodes (livestrap vm) -----------------------------------------------------

    @property
    def vms(self) -> Path:
        return self.root / "vms"

    def vm(self, name: str) -> Path:
        """One virtual node's files (console log, pid, disks)."""
        return self.vms / name

    # -- what is whose ------------------------------------------------------------------

    def private_parts(self) -> dict[Path, int]:
        """Folders others must never read, with their modes (workdirs.protect_data_dir makes
        them so); the tokens (0600) and the database (0640) are checked where opened."""
        return {self.keys: 0o700, self.tmp: 0o700, self.spec: 0o750, self.logs: 0o750}

    def secret_dirs(self) -> tuple[Path, ...]:
        """Folders no build spec may name, be in or hold (livestrap.specpaths)."""
        return (self.keys, self.images, self.tmp)

    def secret_files(self) -> tuple[Path, ...]:
        """Files no build spec may name or hold (livestrap.specpaths)."""
        return (self.admin_token, self.discovery_token, *self.db_files())


@dataclass(frozen=True)
class CacheDir:
    """Paths under the builds' cache (`DataDir.cache`, or the folder --cache-dir names):
    downloaded packages, and the root trees incremental rebuilds start from."""

    root: Path

    @property
    def apt_archives(self) -> Path:
        """Downloaded .deb files, hard-linked in and out of every build's tree."""
        return self.root / "apt-archives"

    @property
    def base_trees(self) -> Path:
        """`base-trees/<key>.<ns>/`: a root tree as mmdebstrap left it (builder.basetree)."""
        return self.root / "base-trees"
