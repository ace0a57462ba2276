"""The command seam: `Runner = Callable[[argv, timeout_s, env], RunResult]`, subprocess here.

Actions run commands (apt-get, systemctl) only through a Runner, so unit tests swap in a
fake. Output goes to a temporary file, not a pipe, so a chatty command can neither fill
memory nor block; only its last OUTPUT_KEEP bytes are read back.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

OUTPUT_KEEP = 65536
TERM_GRACE_S = 10.0  # after SIGTERM, before SIGKILL: dpkg gets to finish the file it writes


@dataclass(frozen=True)
class RunResult:
    """exit_code None: it did not finish (timed out, or could not start: see output)."""

    exit_code: int | None
    output: str
    timed_out: bool = False


Runner = Callable[[Sequence[str], float, Mapping[str, str] | None], RunResult]


def _tail(fh: IO[bytes]) -> str:
    size = fh.seek(0, os.SEEK_END)
    fh.seek(max(0, size - OUTPUT_KEEP))
    return fh.read().decode("utf-8", errors="replace")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except OSError:  # ProcessLookupError: none left (PermissionError cannot be: ours)
        return False
    return True


def _stop(proc: subprocess.Popen[bytes], grace_s: float) -> None:
    """SIGTERM the whole process group; SIGKILL what is left of it after grace_s."""
    with contextlib.suppress(OSError):  # it may have just ended by itself
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _group_alive(proc.pid):
            return
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def subprocess_runner(
    argv: Sequence[str],
    timeout_s: float,
    env: Mapping[str, str] | None = None,
    *,
    grace_s: float = TERM_GRACE_S,
) -> RunResult:
    """Run argv (never through a shell), stdout and stderr together. When it outlives
    timeout_s its whole process group gets SIGTERM (apt and dpkg stop cleanly), then
    SIGKILL grace_s later."""
    with tempfile.NamedTemporaryFile(prefix="livestrap-agent-") as out:
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                start_new_session=True,
            )
        except OSError as exc:
            return RunResult(None, f"cannot run {argv[0]}: {exc.strerror or exc}")
        try:
            code: int | None = proc.wait(timeout=timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            _stop(proc, grace_s)
            code, timed_out = None, True
        return RunResult(code, _tail(out), timed_out)
