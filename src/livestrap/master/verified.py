"""Image files are served only once their bytes match the manifest's sha256.

Why: with several masters on one shared `images/` (NFS, docs/scaling.md) a master serves
files it did not write itself, and a file can change under any master (a half-finished
copy, a disk fault, a hand edit). Each master therefore hashes a file the first time it
would serve it, and again whenever its inode, size or mtime changes; until then, and
after a mismatch, the file is refused (409, the node's retry asks again).
One hash per file and version per process: ~0.2 s for a 76 MB squashfs, taken by the
first request while the others for the same file wait on its lock.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

from livestrap.errors import StoreError
from livestrap.store.manifest import sha256_file

log = logging.getLogger(__name__)

FileKey = tuple[int, int, int, int]  # device, inode, size, mtime (ns)
_MAX_ENTRIES = 1024  # files: 3 per image, a few images at a time


class UnverifiedFile(StoreError):
    """The file's bytes do not match its image's manifest: never served."""


class VerifiedFiles:
    """The files this process has hashed, by path and version; thread-safe."""

    def __init__(self) -> None:
        self._ok: dict[Path, tuple[FileKey, str]] = {}
        self._locks: dict[Path, threading.Lock] = {}
        self._guard = threading.Lock()

    def check(self, path: Path, st: os.stat_result, sha256: str, what: str) -> None:
        """Return when `path` (as `st` describes it) holds bytes with `sha256`; raise
        UnverifiedFile when it does not."""
        key: FileKey = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if self._ok.get(path) == (key, sha256):
            return
        with self._guard:
            lock = self._locks.setdefault(path, threading.Lock())
        with lock:
            if self._ok.get(path) == (key, sha256):
                return  # another request hashed it meanwhile
            t0 = time.monotonic()
            try:
                got = sha256_file(path)
            except OSError as err:
                raise UnverifiedFile(f"{what}: cannot read it ({err.strerror})") from None
            if got != sha256:
                log.error("%s: sha256 %s, the manifest says %s: not served", what, got, sha256)
                raise UnverifiedFile(f"{what} does not match its manifest's sha256: not served")
            log.info("%s: sha256 checked in %.2f s", what, time.monotonic() - t0)
            with self._guard:
                if len(self._ok) >= _MAX_ENTRIES:
                    self._ok.clear()
                self._ok[path] = (key, sha256)


VERIFIED = VerifiedFiles()  # per process: what one master has hashed itself
