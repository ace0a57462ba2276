"""Directories livestrap writes into (data dir, cache dir): made if need be and checked
writable before any work starts, so a bad path is one clear line, not a traceback later."""

from __future__ import annotations

import tempfile
from pathlib import Path

from livestrap.errors import StartupError


def ensure_writable_dir(path: Path, what: str, flag: str) -> Path:
    """`path` exists (made if need be) and takes new files; else StartupError saying so."""
    fix = f"pass a writable directory with {flag}"
    if path.exists() and not path.is_dir():
        raise StartupError(f"{what} {path} is not a directory; {fix}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StartupError(f"cannot create {what} {path}: {err.strerror}; {fix}") from None
    try:
        with tempfile.TemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as err:
        raise StartupError(f"{what} {path} is not writable: {err.strerror}; {fix}") from None
    return path
