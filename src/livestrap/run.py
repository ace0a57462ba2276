"""The single place where livestrap runs external commands.

Every command is an argv list (built by pure functions elsewhere), runs with a clean
environment, is logged with its arguments, and has its output streamed line by line to
the build log. A failure raises CommandError naming the stage; an interrupt kills the
command's whole process group (only processes we started) before it propagates.
"""

from __future__ import annotations

import collections
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from livestrap.errors import BuildCancelled, CommandError

LineSink = Callable[[str], None]

BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LC_ALL": "C.UTF-8",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
    "HOME": "/root",
}
TAIL_LINES = 40
TERM_GRACE_S = 10.0


class BuildLog:
    """An append-only log file; every line is flushed so `tail -f` and the API see it live.

    Each line starts with the seconds since the build started, to see where time goes.
    """

    def __init__(self, path: Path, echo: LineSink | None = None) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: TextIO = path.open("a", encoding="utf-8", errors="replace")
        self._echo = echo
        self._lock = threading.Lock()
        self._started = time.monotonic()

    def write(self, line: str) -> None:
        stamp = time.monotonic() - self._started
        with self._lock:
            self._fh.write(f"[{stamp:7.1f}] {line.rstrip(chr(10))}\n")
            self._fh.flush()
        if self._echo is not None:
            self._echo(line)

    def close(self) -> None:
        self._fh.close()


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(BASE_ENV)
    if extra:
        env.update(extra)
    return env


def run(
    argv: Sequence[str],
    *,
    stage: str,
    log: LineSink,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin_text: str | None = None,
    cancel: threading.Event | None = None,
) -> list[str]:
    """Run argv, stream its output to `log`, and return the last lines of output.

    Raises CommandError on a non-zero exit and BuildCancelled when `cancel` is set; on
    any interrupt (KeyboardInterrupt, SystemExit from a signal handler) the command's
    process group is terminated and reaped before the exception propagates.
    """
    args = [str(a) for a in argv]
    log(f"$ {shlex.join(args)}")
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    proc = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if stdin_text is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=clean_env(env),
        cwd=cwd,
        start_new_session=True,
        text=True,
        errors="replace",
    )
    watcher = _watch_cancel(proc, cancel) if cancel is not None else None
    try:
        if stdin_text is not None and proc.stdin is not None:
            proc.stdin.write(stdin_text)
            proc.stdin.close()
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            tail.append(line)
            log(line)
        returncode = proc.wait()
    except BaseException:
        stop_process_group(proc)
        raise
    finally:
        if watcher is not None:
            watcher.set()
    if cancel is not None and cancel.is_set():
        raise BuildCancelled(stage, "cancel requested")
    if returncode != 0:
        raise CommandError(stage, args, returncode, "\n".join(tail))
    return list(tail)


def stop_process_group(proc: subprocess.Popen[Any], grace_s: float = TERM_GRACE_S) -> None:
    """SIGTERM the group we started, then SIGKILL it if it lingers; always reap."""
    if proc.poll() is not None:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def _watch_cancel(proc: subprocess.Popen[str], cancel: threading.Event) -> threading.Event:
    """Stop `proc` from a side thread when `cancel` is set; returns an event to end the watch."""
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            if cancel.wait(0.2):
                stop_process_group(proc)
                return

    threading.Thread(target=watch, name="cancel-watch", daemon=True).start()
    return done


def query(argv: Sequence[str], *, stage: str, log: LineSink, cwd: Path | None = None) -> list[str]:
    """Run a short read-only command whose output is data: log the command, return stdout.

    stderr goes to the log; a non-zero exit raises CommandError like `run`.
    """
    args = [str(a) for a in argv]
    log(f"$ {shlex.join(args)}")
    proc = subprocess.run(
        args, capture_output=True, text=True, env=clean_env(), cwd=cwd, check=False
    )
    for line in proc.stderr.splitlines():
        log(line)
    if proc.returncode != 0:
        raise CommandError(stage, args, proc.returncode, proc.stderr[-2000:])
    return proc.stdout.splitlines()
