"""`<data-dir>/tmp/`: one owner for its names and for sweeping it, so leftovers are known.

Every entry is `<kind>-<pid>.<start>.<host>-<random>`: the kind says what made it
(import, upload, export, delete, build), and the pid with its start time (from /proc, so a
reused pid is not mistaken for the owner) and its host who owns it. The host is 16 hex
digits: 8 for the machine (its machine-id, host name and pid namespace: where a pid means
something) and 8 for its boot (the kernel's boot_id).
Masters on several hosts may share one data dir (docs/scaling.md), and a pid means
nothing on another host. `clean_stale` is the one sweep:
- imports, uploads, exports and deletes are stale when their owner is gone: on this
  machine, when the process is gone or the machine has booted since; on another machine,
  only once the entry is untouched for FOREIGN_STALE_S. Names of a livestrap before the
  owner tag are stale; those before the host tag are judged as this machine's. The master
  sweeps them at start and before each import, upload and export
  (ImageStore.clean_stale_tmp);
- build trees are stale to the holder of the build lock, who runs the only build: it
  sweeps them (kind BUILD) with an eraser that unmounts first (builder.workspace), since
  they may hold mounts.
Entries this module did not name are left alone.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

KINDS = ("import", "upload", "export", "delete")
BUILD = "build"
# names of livestrap before the owner tag: no process of this version makes them
LEGACY_PREFIXES = ("import-", "delete-", "api-upload-", "api-export-")
# tmp/ holds uploads, exports and half-unpacked images: the owner's alone (the data dir
# itself may be open to others for traversal, e.g. 0751 for nginx)
TMP_DIR_MODE = 0o700
Eraser = Callable[[Path], None]
_NAME_RE = re.compile(
    r"(?P<kind>[a-z]+)-(?P<pid>[0-9]+)\.(?P<start>[0-9]+)"
    r"(?:\.(?P<machine>[0-9a-f]{8})(?P<boot>[0-9a-f]{8}))?-"
)
# another machine's entry: its process cannot be asked, so it goes once untouched this long
# (an upload or import in progress writes to it; an export lives as long as its download)
FOREIGN_STALE_S = 24 * 3600.0


def _start_time(pid: int) -> str:
    """Start time of a process in clock ticks since boot ("0" when /proc cannot tell)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "0"
    fields = stat.rsplit(")", 1)[-1].split()  # the command name may hold spaces and ')'
    return fields[19] if len(fields) > 19 and fields[19].isdigit() else "0"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _read(path: str) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return ""


@functools.cache
def machine_tag() -> str:
    """8 hex digits for where this process's pids mean something: the machine-id, the host
    name and the pid namespace together (cloned VMs may share a machine-id; containers may
    share a host name and the kernel, but not their pids)."""
    try:
        pid_ns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pid_ns = ""
    return _short_hash(f"{_read('/etc/machine-id')} {socket.gethostname()} {pid_ns}")


def boot_tag() -> str:
    """8 hex digits for this boot of the machine ("0" hashed when the kernel does not say)."""
    return _short_hash(_read("/proc/sys/kernel/random/boot_id") or "0")


def owner_tag() -> str:
    """`<pid>.<start>.<host>` of this process (computed per call: a forked child is
    another owner)."""
    pid = os.getpid()
    return f"{pid}.{_start_time(pid)}.{machine_tag()}{boot_tag()}"


def _prefix(kind: str) -> str:
    if not re.fullmatch(r"[a-z]+", kind):
        raise ValueError(f"temp kind {kind!r} must be lower-case letters")
    return f"{kind}-{owner_tag()}-"


def make_dir(tmp_dir: Path, kind: str) -> Path:
    """A new private (0700) dir under tmp/, owned by this process."""
    tmp_dir.mkdir(mode=TMP_DIR_MODE, parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=_prefix(kind), dir=tmp_dir))


def make_file(tmp_dir: Path, kind: str, suffix: str = "") -> tuple[int, Path]:
    """A new private (0600) file under tmp/, owned by this process: (fd, path)."""
    tmp_dir.mkdir(mode=TMP_DIR_MODE, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=_prefix(kind), suffix=suffix, dir=tmp_dir)
    return fd, Path(name)


def owner_alive(pid: int, start: str) -> bool:
    """Whether the process that made an entry still runs (same pid and start time)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, as another user
    return start == "0" or _start_time(pid) in (start, "0")


def is_stale(entry: Path, kinds: tuple[str, ...] = KINDS, now: float | None = None) -> bool:
    """An entry of one of `kinds` whose owner is gone, or a legacy one (no owner tag).
    A build tree (BUILD in `kinds`: asked by the build lock's holder) is stale whoever
    made it, tagged or not."""
    name = entry.name
    if BUILD in kinds and name.startswith(f"{BUILD}-"):
        return True
    m = _NAME_RE.match(name)
    if m is None:
        return name.startswith(LEGACY_PREFIXES) and _legacy_kind(name) in kinds
    if m["kind"] not in kinds:
        return False
    if m["machine"] is not None and m["machine"] != machine_tag():
        return untouched_s(entry, now) >= FOREIGN_STALE_S
    if m["boot"] is not None and m["boot"] != boot_tag():
        return True  # made before this machine last booted: its process is gone
    return not owner_alive(int(m["pid"]), m["start"])


def untouched_s(entry: Path, now: float | None = None) -> float:
    """Seconds since the entry or anything in it was last written (0 if it is gone)."""
    try:
        newest = entry.lstat().st_mtime
        if entry.is_dir() and not entry.is_symlink():
            for folder, dirs, files in os.walk(entry):  # links are not followed
                for name in (*dirs, *files):
                    newest = max(newest, os.lstat(os.path.join(folder, name)).st_mtime)
    except FileNotFoundError:
        return 0.0
    return (time.time() if now is None else now) - newest


def _legacy_kind(name: str) -> str:
    """The kind of a legacy name (`api-upload-...` was an upload)."""
    return name.removeprefix("api-").split("-", 1)[0]


def erase(entry: Path) -> None:
    """Erase one entry of tmp/ (a dir with all in it; a file or a link itself)."""
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry)
    else:
        entry.unlink()


def clean_stale(
    tmp_dir: Path, kinds: tuple[str, ...] = KINDS, *, eraser: Eraser | None = None
) -> list[str]:
    """The one sweep of tmp/: erase its stale entries of `kinds` with `eraser` (`erase`
    by default); the names of what was removed. Build trees are swept only as directories
    (BUILD, by the build lock's holder), and only with an eraser given: they may hold bind
    mounts (of /dev, say), which a plain rmtree would go through into the host's tree, so
    their eraser unmounts first (builder.workspace.remove_tree; store/ does not import it)."""
    if eraser is None:
        if BUILD in kinds:
            raise ValueError("sweeping build trees needs an eraser that unmounts first")
        eraser = erase
    try:
        entries = sorted(tmp_dir.iterdir())
    except FileNotFoundError:
        return []
    removed = []
    for entry in entries:
        if not is_stale(entry, kinds):
            continue
        if entry.name.startswith(f"{BUILD}-") and (entry.is_symlink() or not entry.is_dir()):
            continue  # not a tree a build made
        try:
            eraser(entry)
        except FileNotFoundError:
            continue  # another process cleaned it first
        removed.append(entry.name)
    return removed
