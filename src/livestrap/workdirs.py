"""Directories livestrap writes into (data dir, cache dir): made if need be and checked
writable before any work starts, so a bad path is one clear line, not a traceback later."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from livestrap.datadir import DataDir
from livestrap.errors import StartupError

# The data dir holds the database (settings, the root password hash) and the tokens. A new
# one is made 0750. An existing one is only narrowed, never widened: group write and
# others' read and write go, but others' x stays (nginx's workers, which send
# DATA_DIR/images, may pass through it by o+x: 0751), and an ACL is left as it is. What
# is secret inside is protected by its own mode, not by the data dir's
# (DataDir.private_parts: made so, narrowed at start).
PRIVATE_DIR_MODE = 0o750
NARROWED_BITS = 0o026  # group write, others' read and write
_ACL_XATTR = "system.posix_acl_access"


def has_acl(path: Path) -> bool:
    """Whether `path` carries a POSIX access ACL (its group bits are then the ACL mask)."""
    try:
        os.getxattr(path, _ACL_XATTR)
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP):
            return False
        raise
    return True


def ensure_writable_dir(path: Path, what: str, flag: str, *, private: bool = False) -> Path:
    """`path` exists (made if need be) and takes new files; else StartupError saying so.
    `private`: made 0750, and an existing one narrowed (restrict_dir: others keep x)."""
    fix = f"pass a writable directory with {flag}"
    if path.exists() and not path.is_dir():
        raise StartupError(f"{what} {path} is not a directory; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE if private else 0o777)
    except OSError as err:
        raise StartupError(f"cannot create {what} {path}: {err.strerror}; {fix}") from None
    if private:
        restrict_dir(path, what)
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise StartupError(f"{what} {path} is not writable: {err.strerror}; {fix}") from None
    return path


def restrict_dir(path: Path, what: str = "data dir", *, drop: int = NARROWED_BITS) -> bool:
    """Take the `drop` bits off `path` (default: group write, others' read and write, so
    0755 becomes 0751 and 0751 stays); never adds a bit. With an ACL the group bits (its
    mask, which bounds every named entry) are left alone. True if the mode changed."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if has_acl(path):
        drop &= ~0o070
    if not mode & drop:
        return False
    try:
        path.chmod(mode & ~drop)
    except OSError as err:
        raise StartupError(
            f"{what} {path} has mode {mode:04o} (local users can read it) and cannot be "
            f"narrowed: {err.strerror}; run: chmod {mode & ~drop:o} {path}"
        ) from None
    return True


def protect_data_dir(data_dir: Path) -> None:
    """The data dir (made 0750, else narrowed) and its private parts
    (DataDir.private_parts: made with their mode, an existing one narrowed to it)."""
    data_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    restrict_dir(data_dir)
    for part, mode in DataDir(data_dir).private_parts().items():
        if part.is_symlink():
            continue  # not ours to chmod through; specpaths refuses links in the spec dir
        part.mkdir(mode=mode, exist_ok=True)
        restrict_dir(part, f"{part.name}/ of the data dir", drop=0o777 & ~mode)
    make_shared_parts(DataDir(data_dir))


def make_shared_parts(layout: DataDir) -> None:
    """What the master and a root `livestrap builder` both open, made by the master first
    (it starts first: the builder waits for its database), so they are the master's user's:
    images/ (the builder's images take its owner and group, master.groupshare) and the
    locks. Made by root, the master running as `livestrap` could not list or lock them."""
    layout.images.mkdir(exist_ok=True)  # its mode as the store makes it (nginx may read it)
    for lock in (layout.store_lock, layout.build_lock, layout.worker_lock, layout.repo_lock):
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        os.close(os.open(lock, flags, 0o640))
