"""Tolerant I/O for the collectors: reads and tool runs that report, never raise.

Every helper turns an OSError or a missing tool into None (plus a failure entry
when the caller expects the data), which is what lets one odd node still report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

Runner = Callable[[list[str]], str | None]
Facts = dict[str, Any]
Failures = list[dict[str, str]]

TOOL_TIMEOUT_S = 30


def run_tool(argv: list[str]) -> str | None:
    """The real runner: stdout of a successful run, None if missing, failing or hung."""
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=TOOL_TIMEOUT_S,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def fail(failures: Failures, collector: str, error: str) -> None:
    """Record a problem in the report's `failures` list (the master shows them)."""
    failures.append({"collector": collector, "error": error})


def tool(runner: Runner, argv: list[str], failures: Failures, collector: str) -> str | None:
    """Run an optional tool; its absence is a failure entry, not an error."""
    output = runner(argv)
    if output is None:
        fail(failures, collector, f"`{' '.join(argv)}`: tool missing or failed")
    return output


def read(path: Path, failures: Failures | None = None, collector: str = "") -> str | None:
    """File text stripped; None if unreadable, recorded only when the file is expected."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError as exc:
        if failures is not None:
            fail(failures, collector, f"{path}: {exc.strerror or exc}")
        return None


def link_name(path: Path) -> str | None:
    """Basename of a symlink's target (sysfs `driver`, `device`), even if dangling."""
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def sys_path(root: Path, path: Path) -> str:
    """The resolved path as the node sees it (`/sys/devices/...`), fixture root stripped."""
    real = os.path.realpath(path)
    return "/" + os.path.relpath(real, os.path.realpath(root))


def listdir(path: Path, failures: Failures, collector: str) -> list[str]:
    """Sorted entries for a stable report (and facts hash); [] plus a failure if unreadable."""
    try:
        return sorted(os.listdir(path))
    except OSError as exc:
        fail(failures, collector, f"{path}: {exc.strerror or exc}")
        return []
