"""Token files watched while the master runs, so a new token needs no restart.

Every master on a data dir checks the two token files in its periodic upkeep (every
FLUSH_S): a token moved into place (`mv`, which is atomic) is taken within a few seconds,
and from then on the old one is refused. A new admin token also ends the console sessions
made before this master took it (and at start, those made before the file was written): a
leaked token's logins go with it, also one made on a master that had not yet taken the
new token, since each master ends those older than its own switch. A file that would
not pass at start (missing, blank, a symlink, open to others, short) is logged once and
not taken: the token in use stays, so a slip in the rotation locks nobody out.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.errors import StartupError
from livestrap.master.console import sessions
from livestrap.master.db import Database
from livestrap.master.logsetup import redact
from livestrap.master.state import AppState
from livestrap.master.tokens import read_token

log = logging.getLogger(__name__)
# device, inode, size, mtime in ns, mode, owner: what changes when the file is replaced,
# rewritten, or opened to others (then it is read again, and refused)
FileKey = tuple[int, int, int, int, int, int]
UNREAD: FileKey = (-1, -1, -1, -1, -1, -1)  # no file has it: the first round reads


def file_key(path: Path) -> FileKey | None:
    """The file's key; None if it cannot be looked at (reading it then says why)."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_mode,
            info.st_uid)  # fmt: skip


def end_sessions_before(db: Database, cutoff: float) -> int:
    with db.session() as session:
        return sessions.end_before(session, cutoff)


def end_sessions_older_than_file(db: Database, path: Path) -> int:
    """At start: end the console sessions made before the admin token file was written
    (it was replaced while this master was down)."""
    try:
        written = os.stat(path, follow_symlinks=False).st_mtime
    except OSError:
        return 0
    return end_sessions_before(db, written)


@dataclass
class WatchedToken:
    """One token file and what was last seen of it."""

    name: str  # "admin" or "discovery": the AppState attribute is NAME_token
    path: Path
    key: FileKey | None = UNREAD  # None: it could not be looked at
    problem: str | None = None  # the last refusal logged, so it is logged once
    sessions_before: float | None = None  # console sessions still to end (admin)


@dataclass
class TokenWatch:
    """The periodic task: take each token file's new token into `state`."""

    state: AppState
    tokens: list[WatchedToken] = field(default_factory=list)

    @classmethod
    def for_state(cls, state: AppState) -> TokenWatch:
        cfg = state.settings
        files = (("admin", cfg.admin_token_file), ("discovery", cfg.discovery_token_file))
        return cls(state, [WatchedToken(name, path) for name, path in files])

    def __call__(self) -> list[str]:
        """The names of the tokens replaced this round."""
        replaced = [t.name for t in self.tokens if self._check(t)]
        for watched in self.tokens:
            if watched.sessions_before is not None:  # kept until the database takes it
                ended = end_sessions_before(self.state.db, watched.sessions_before)
                watched.sessions_before = None
                log.warning("console sessions made with the old admin token ended: %d", ended)
        return replaced

    def _check(self, watched: WatchedToken) -> bool:
        key = file_key(watched.path)
        if key == watched.key:
            return False
        try:
            token = read_token(watched.path)
            if token is None:
                raise StartupError(f"token file {watched.path} is missing or blank")
        except StartupError as err:
            if str(err) != watched.problem:
                log.error("%s token not replaced, the one in use stays: %s", watched.name, err)
            watched.problem = str(err)
            return False  # key kept: the next round reads the file again
        watched.key, watched.problem = key, None
        attribute = f"{watched.name}_token"
        if token == getattr(self.state, attribute):
            return False
        redact(token)
        setattr(self.state, attribute, token)
        if watched.name == "admin":  # the old token's logins go with it
            watched.sessions_before = time.time()
        log.warning("%s token replaced (%s): the old one is refused from now on",
                    watched.name, watched.path)  # fmt: skip
        return True
