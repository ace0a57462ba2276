"""Directories livestrap writes into (data dir, cache dir): made if need be and checked
writable before any work starts, so a bad path is one clear line, not a traceback later."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

from livestrap.errors import StartupError

# The data dir holds the database (settings, the root password hash) and the tokens: local
# users may not list or read it (nginx's workers, which read DATA_DIR/images, get in by
# group or an ACL: see docs/security.md).
PRIVATE_DIR_MODE = 0o750


def ensure_writable_dir(path: Path, what: str, flag: str, *, private: bool = False) -> Path:
    """`path` exists (made if need be) and takes new files; else StartupError saying so.
    `private`: made 0750, and an existing one open to others (or group-writable) is
    narrowed to at most 0750."""
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


def restrict_dir(path: Path, what: str = "data dir") -> bool:
    """Take every right from others, and write from group (0755 becomes 0750); True if
    the mode changed."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if not mode & 0o027:
        return False
    try:
        path.chmod(mode & ~0o027)
    except OSError as err:
        raise StartupError(
            f"{what} {path} has mode {mode:04o} (local users can read it) and cannot be "
            f"narrowed: {err.strerror}; run: chmod 750 {path}"
        ) from None
    return True
