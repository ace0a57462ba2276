"""The single place where livestrap runs external commands.

Every command is an argv list (built by pure functions elsewhere), runs with a clean
environment, is logged with its arguments, and has its output streamed line by line to
the build log. A failure raises CommandError naming the stage; an interrupt kills the
command's whole process group (only processes we started) before it propagates.

Shapes: `run` (a stage's command, to its end), `query` (short, output is data),
`attempt` (best-effort cleanup, exit status returned), `start` (a long-lived process:
a VM, a probe) and `pipe` (a filter the caller streams through: zstd on a bundle).

Environment: build commands always get the clean one (fixed PATH, HOME=/root), so an
image does not depend on who built it. `start` and `pipe` take `inherit_env=True` for the
user's own tools, which see the caller's environment as they did before run.py ran them:
QEMU under /opt or ~/.local/bin (found on the caller's PATH, as `kvm_usable` looks for
it), and ZSTD_CLEVEL / ZSTD_NBTHREADS tuning an export.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, TextIO

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


def _child_env(extra: Mapping[str, str] | None, inherit: bool) -> dict[str, str]:
    """The clean environment, or with `inherit` the caller's own (read now), plus `extra`."""
    return {**os.environ, **(extra or {})} if inherit else clean_env(extra)


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
    """SIGTERM the group we started, then SIGKILL it if it lingers; always reap.
    `grace_s` <= 0: SIGKILL at once (a probe has nothing to save)."""
    if proc.poll() is not None:
        return
    steps = ((signal.SIGTERM, grace_s),) if grace_s > 0 else ()
    for sig, wait_s in (*steps, (signal.SIGKILL, 5.0)):
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


def attempt(argv: Sequence[str], *, log: LineSink | None = None) -> int:
    """Run a best-effort cleanup command (umount, gpgconf --kill) and return its exit status.

    A failure is the caller's to judge, so it never raises CommandError; the output goes
    to `log` when given, else nowhere. A command that is not installed still raises OSError.
    """
    args = [str(a) for a in argv]
    proc = subprocess.run(
        args, stdin=subprocess.DEVNULL, capture_output=True, env=clean_env(), check=False
    )
    if log is not None:
        log(f"$ {shlex.join(args)}")
        for line in (proc.stdout + proc.stderr).decode(errors="replace").splitlines():
            log(line)
    return proc.returncode


class _Tail:
    """Reads a process's output lines on a side thread: keeps the last TAIL_LINES, logs them."""

    def __init__(self, stream: IO[bytes], log: LineSink | None) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._stream, self._log = stream, log
        self._thread = threading.Thread(target=self._read, name="run-tail", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._stream:
            for raw in self._stream:
                line = raw.decode(errors="replace").rstrip("\n")
                self.lines.append(line)
                if self._log is not None:
                    self._log(line)

    def text(self) -> str:
        """The tail so far; after the process ended, wait (bounded) for its last lines."""
        self._thread.join(timeout=5.0)
        return "\n".join(self.lines)


class Process:
    """A long-lived command (a VM, a probe) in its own process group; see `start`.

    As a context manager it never outlives the block: leaving it stops the group and
    reaps it, whatever happened inside.
    """

    def __init__(self, popen: subprocess.Popen[bytes], argv: list[str], stage: str,
                 grace_s: float, log: LineSink | None) -> None:  # fmt: skip
        self._proc, self.argv, self.stage, self.grace_s = popen, argv, stage, grace_s
        self._tail = _Tail(popen.stdout, log) if popen.stdout is not None else None

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, None while it runs (negative: killed by that signal)."""
        return self._proc.poll()

    def running(self) -> bool:
        return self._proc.poll() is None

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait for the exit; None if it still runs after `timeout_s`."""
        try:
            return self._proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace_s: float | None = None) -> int:
        """SIGTERM the group, SIGKILL it after `grace_s` (default: the one given to start;
        <= 0: SIGKILL at once), reap it and return the exit status."""
        stop_process_group(self._proc, self.grace_s if grace_s is None else grace_s)
        return self._proc.returncode

    def kill(self) -> int:
        return self.stop(grace_s=0)

    def tail(self) -> str:
        """The last lines of output (only when it goes to a `log`)."""
        return self._tail.text() if self._tail is not None else ""

    def check(self) -> None:
        """Raise CommandError naming the stage if the command has exited non-zero."""
        code = self._proc.poll()
        if code is not None and code != 0:
            raise CommandError(self.stage, self.argv, code, self.tail())

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(
    argv: Sequence[str],
    *,
    stage: str,
    output: Path | None = None,
    log: LineSink | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    grace_s: float = TERM_GRACE_S,
    inherit_env: bool = False,
) -> Process:
    """Start a long-lived command: stdout and stderr to the file `output` (truncated) or
    line by line to `log` (from a side thread), else nowhere; stdin is /dev/null.
    `inherit_env`: the caller's environment instead of the clean one (see the module)."""
    if output is not None and log is not None:
        raise ValueError("start: output goes to a file or to a log, not both")
    args = [str(a) for a in argv]
    if log is not None:
        log(f"$ {shlex.join(args)}")
    with contextlib.ExitStack() as stack:  # our copy of the output file closes at once
        sink: IO[bytes] | int = subprocess.PIPE if log is not None else subprocess.DEVNULL
        if output is not None:
            sink = stack.enter_context(output.open("wb"))
        popen = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=sink,
                                 stderr=subprocess.STDOUT, env=_child_env(env, inherit_env),
                                 cwd=cwd, start_new_session=True)  # fmt: skip
    return Process(popen, args, stage, grace_s, log)


class Pipe:
    """A filter process the caller streams through (zstd on a bundle); see `pipe`.

    Leaving the block closes our ends, waits (as long as it takes, or up to `wait_s`) and
    raises CommandError, naming the stage with stderr's tail, on a non-zero exit. An
    exception inside the block, or while leaving it (Ctrl-C during the wait), kills the
    process; it is always reaped.
    """

    def __init__(self, popen: subprocess.Popen[bytes], argv: list[str], stage: str,
                 wait_s: float | None, log: LineSink | None) -> None:  # fmt: skip
        self._proc, self.argv, self.stage, self.wait_s = popen, argv, stage, wait_s
        assert popen.stderr is not None
        self._stderr = _Tail(popen.stderr, log)

    @property
    def pid(self) -> int:
        return self._proc.pid

    @property
    def stdin(self) -> IO[bytes]:
        """What the caller writes into the command (when `pipe` got no stdin)."""
        if self._proc.stdin is None:
            raise ValueError(f"{self.argv[0]}: stdin is not a pipe")
        return self._proc.stdin

    @property
    def stdout(self) -> IO[bytes]:
        """What the caller reads from the command (when `pipe` got no stdout); read it to
        the end before leaving the block, or the command may die of a broken pipe."""
        if self._proc.stdout is None:
            raise ValueError(f"{self.argv[0]}: stdout is not a pipe")
        return self._proc.stdout

    def __enter__(self) -> Pipe:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: object) -> None:  # fmt: skip
        try:
            if exc is not None:
                stop_process_group(self._proc, grace_s=0)
            self._close()  # may block: flushing into a slow command
            code = self._proc.wait() if exc is not None else self._wait()
        except BaseException:
            stop_process_group(self._proc, grace_s=0)
            raise
        # a broken pipe inside the block is only the symptom when it failed by itself
        if (exc is None and code != 0) or (isinstance(exc, BrokenPipeError) and code > 0):
            raise CommandError(self.stage, self.argv, code, self._stderr.text().strip()) from exc

    def _wait(self) -> int:
        try:
            return self._proc.wait(timeout=self.wait_s)
        except subprocess.TimeoutExpired:
            stop_process_group(self._proc, grace_s=0)
            raise CommandError(self.stage, self.argv, self._proc.returncode,
                               f"still running {self.wait_s:.0f} s after its input ended"
                               ) from None  # fmt: skip

    def _close(self) -> None:
        for stream in (self._proc.stdin, self._proc.stdout):
            if stream is not None:
                with contextlib.suppress(BrokenPipeError):
                    stream.close()


def pipe(
    argv: Sequence[str],
    *,
    stage: str,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    log: LineSink | None = None,
    wait_s: float | None = None,
    inherit_env: bool = False,
) -> Pipe:
    """Start a filter: it reads the file `stdin` (else the caller writes `Pipe.stdin`) and
    writes the file `stdout` (else the caller reads `Pipe.stdout`); stderr is kept for the
    error and given to `log`. Use it as `with pipe(...) as p:`. A command that is not
    installed raises OSError here, before the block. Leaving the block waits for the
    command's end (a slow destination at the end of a large export); `wait_s` bounds that
    wait, then kills it. `inherit_env`: as for `start`."""
    args = [str(a) for a in argv]
    if log is not None:
        log(f"$ {shlex.join(args)}")
    popen = subprocess.Popen(
        args,
        stdin=subprocess.PIPE if stdin is None else stdin,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        env=_child_env(None, inherit_env),
        start_new_session=True,
    )
    return Pipe(popen, args, stage, wait_s, log)
