"""Token files watched while the master runs, so a new token needs no restart.

Every master on a data dir checks the two token files in its periodic upkeep (every
FLUSH_S): a token moved into place (`mv`, which is atomic) is taken within a few seconds,
and from then on the old one is refused. A new admin token also ends the console sessions
made before the file was written: a leaked token's logins go with it. A file that would
not pass at start (missing, blank, a symlink, open to others, short) is logged once and
not taken: the token in use stays, so a slip in the rotation locks nobody out.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.errors import StartupError
from livestrap.master.console import sessions
from livestrap.master.db import Database
from livestrap.master.state import AppState
from livestrap.master.tokens import read_token

log = logging.getLogger(__name__)
FileKey = tuple[int, int, int, int]  # device, inode, size, mtime in ns


def file_key(path: Path) -> FileKey | None:
    """What changes when the file is replaced or rewritten; None if it is not there."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


def end_sessions_before(db: Database, path: Path) -> int:
    """End the console sessions made before the admin token file was last written."""
    try:
        written = os.stat(path, follow_symlinks=False).st_mtime
    except FileNotFoundError:
        return 0
    with db.session() as session:
        return sessions.end_before(session, written)


@dataclass
class WatchedToken:
    """One token file and what was last seen of it."""

    name: str  # "admin" or "discovery": the AppState attribute is NAME_token
    path: Path
    key: FileKey | None = None
    problem: str | None = None  # the last refusal logged, so it is logged once


@dataclass
class TokenWatch:
    """The periodic task: take each token file's new token into `state`."""

    state: AppState
    tokens: list[WatchedToken] = field(default_factory=list)

    @classmethod
    def for_state(cls, state: AppState) -> TokenWatch:
        cfg = state.settings
        files = (("admin", cfg.admin_token_file), ("discovery", cfg.discovery_token_file))
        return cls(state, [WatchedToken(name, path, file_key(path)) for name, path in files])

    def __call__(self) -> list[str]:
        """The names of the tokens replaced this round."""
        return [t.name for t in self.tokens if self._check(t)]

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
        setattr(self.state, attribute, token)
        ended = ""
        if watched.name == "admin":  # the old token's logins go with it
            ended = f"; console sessions ended: {end_sessions_before(self.state.db, watched.path)}"
        log.warning("%s token replaced (%s): the old one is refused from now on%s",
                    watched.name, watched.path, ended)  # fmt: skip
        return True
