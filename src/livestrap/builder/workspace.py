"""The build's scratch space, its lock, and the guarantee that no mount outlives a build.

Commands that need /proc, /sys or /dev in the chroot run in a private mount namespace
(`unshare --mount`), so their mounts vanish with them even on SIGKILL. `sweep_mounts` is
the second line: before a tree is deleted, anything still mounted under it is unmounted,
and a tree with a mount left is never deleted (rmtree through a bind mount of /dev would
destroy the host's). Stale trees are swept by store.tmpdirs (kind BUILD) under the lock,
with `remove_tree` as the eraser.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from livestrap.datadir import DataDir
from livestrap.errors import BuildError
from livestrap.run import attempt
from livestrap.store import tmpdirs

BUILD_PREFIX = f"{tmpdirs.BUILD}-"  # staging dirs of builds (named by store.tmpdirs)


def mounts_under(path: Path, mounts_file: Path = Path("/proc/self/mounts")) -> list[Path]:
    """Mount points at or below `path`, deepest first (the order to unmount them)."""
    root = os.path.realpath(path)
    found = []
    for line in mounts_file.read_text().splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        point = _unescape(fields[1])
        if point == root or point.startswith(root.rstrip("/") + "/"):
            found.append(Path(point))
    return sorted(set(found), key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    """Undo the kernel's octal escapes in /proc/self/mounts (space, tab, newline, '\\')."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def sweep_mounts(path: Path) -> list[Path]:
    """Unmount everything under `path`; returns what had to be unmounted."""
    swept = mounts_under(path)
    for point in swept:
        if attempt(["umount", str(point)]) != 0:
            attempt(["umount", "--lazy", str(point)])
    return swept


def remove_tree(path: Path) -> None:
    """Delete a build tree, but only once nothing is mounted under it."""
    if not path.exists():
        return
    sweep_mounts(path)
    left = mounts_under(path)
    if left:
        raise BuildError(
            "cleanup", f"refusing to delete {path}: still mounted: {', '.join(map(str, left))}"
        )
    shutil.rmtree(path, ignore_errors=True)


_held = threading.local()  # the data dirs whose build lock this thread holds


@contextlib.contextmanager
def build_lock(data_dir: Path) -> Iterator[None]:
    """Hold the one-build-at-a-time lock for the data dir (fails fast if taken). Within
    the thread that holds it, taking it again is a no-op: the master's build worker takes it
    before it claims a build, and the pipeline's own hold is then that one."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = os.path.realpath(data_dir)
    held: set[str] = _held.__dict__.setdefault("dirs", set())
    if key in held:
        yield
        return
    fd = os.open(DataDir(data_dir).build_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise BuildError(
                "prepare", f"another build is running in {data_dir} (pid {holder})"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)
    finally:
        os.close(fd)
