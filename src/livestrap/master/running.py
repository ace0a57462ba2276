"""Who runs on a data dir: every master (and builder) holds a shared lock on its
`running.lock` while it runs, and `livestrap restore` takes it exclusively, so a restore
never swaps the database, tokens or keys under a running process. A flock is released
by the kernel when its holder dies: no stale pid file to clean up.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from livestrap.datadir import DataDir
from livestrap.errors import ConflictError


def _open(data_dir: Path) -> int:
    path = DataDir(data_dir).in_use_lock
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)


class InUse:
    """The shared hold of one running process; `release()` at its stop."""

    def __init__(self, data_dir: Path) -> None:
        self._fd: int | None = _open(data_dir)
        fcntl.flock(self._fd, fcntl.LOCK_SH)  # waits only while a restore runs

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@contextlib.contextmanager
def exclusive(data_dir: Path, *, force: bool = False) -> Iterator[None]:
    """Hold the data dir alone; ConflictError when a master or builder runs on it (with
    `force`: go on without the lock, the operator knows better)."""
    data_dir.mkdir(mode=0o750, parents=True, exist_ok=True)
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not force:
                raise ConflictError(
                    f"a livestrap master or builder is running on {data_dir}: stop it first "
                    "(systemctl stop livestrap-master livestrap-builder), or pass --force"
                ) from None
        yield
    finally:
        os.close(fd)
