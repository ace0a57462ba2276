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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO

OUTPUT_KEEP = 65536


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


def subprocess_runner(
    argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None
) -> RunResult:
    """Run argv (never through a shell), stdout and stderr together; kill its whole
    process group when it outlives timeout_s."""
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
            with contextlib.suppress(OSError):  # it may have just ended by itself
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code, timed_out = None, True
        return RunResult(code, _tail(out), timed_out)
