"""run's long-lived process (`start`), filter (`pipe`) and cleanup (`attempt`) shapes, with
real tiny commands: exit status, stderr's tail in the error, kill on leaving, no zombie."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from livestrap.errors import CommandError
from livestrap.run import attempt, pipe, start

pytestmark = pytest.mark.unit


def gone(pid: int) -> bool:
    """True once `pid` is reaped (ours) or at least dead (an orphan whose reaper is slow)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


def reaped(pid: int) -> bool:
    """Our child is no longer in the process table: not running and not a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()
    return False


# -- pipe -------------------------------------------------------------------------------


def test_pipe_streams_from_the_caller_into_a_file(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with out.open("wb") as fh, pipe(["cat"], stage="bundle", stdout=fh) as p:
        p.stdin.write(b"hello\n" * 1000)
    assert out.read_bytes() == b"hello\n" * 1000
    assert reaped(p.pid)


def test_pipe_streams_from_a_file_to_the_caller(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.write_bytes(b"x" * 300_000)
    with src.open("rb") as fh, pipe(["cat"], stage="bundle", stdin=fh) as p:
        data = p.stdout.read()
    assert data == b"x" * 300_000
    assert reaped(p.pid)


def test_pipe_ends_that_the_caller_does_not_own_are_refused(tmp_path: Path) -> None:
    with (tmp_path / "f").open("wb") as fh, pipe(["true"], stage="s", stdout=fh) as p:
        pass
    with pytest.raises(ValueError, match="stdout is not a pipe"):
        p.stdout.read()


def test_pipe_failure_names_the_stage_with_the_stderr_tail() -> None:
    logged: list[str] = []
    script = "cat >/dev/null; echo warming >&2; echo bad frame >&2; exit 3"
    with (
        pytest.raises(CommandError) as exc,
        pipe(["sh", "-c", script], stage="bundle", log=logged.append) as p,
    ):
        p.stdin.write(b"data")
        _ = p.stdout  # a pipe too; nothing is written to it
    assert exc.value.stage == "bundle"
    assert exc.value.returncode == 3
    assert exc.value.log_tail == "warming\nbad frame"
    assert str(exc.value) == "stage bundle: sh exited with status 3"
    assert logged == [f"$ sh -c '{script}'", "warming", "bad frame"]
    assert reaped(p.pid)


def test_pipe_a_broken_pipe_reports_why_the_command_died() -> None:
    with (
        pytest.raises(CommandError) as exc,
        pipe(["sh", "-c", "echo 'no space' >&2; exit 5"], stage="bundle") as p,
    ):
        for _ in range(10_000):  # until the write hits the closed pipe
            p.stdin.write(b"\0" * 65536)
            p.stdin.flush()
    assert exc.value.returncode == 5 and exc.value.log_tail == "no space"
    assert isinstance(exc.value.__cause__, BrokenPipeError)


def test_pipe_output_left_unread_is_an_error() -> None:
    with pytest.raises(CommandError) as exc, pipe(["yes"], stage="s") as p:
        p.stdout.read(10)
    assert exc.value.returncode != 0  # yes died of SIGPIPE once we closed our end
    assert reaped(p.pid)


def test_pipe_an_error_inside_the_block_kills_the_command() -> None:
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="caller failed"), pipe(["sleep", "30"], stage="s") as p:
        raise RuntimeError("caller failed")
    assert time.monotonic() - started < 5
    assert reaped(p.pid)


def test_pipe_a_command_that_hangs_after_its_input_is_killed() -> None:
    started = time.monotonic()
    with (
        pytest.raises(CommandError, match="status -9") as exc,
        pipe(["sh", "-c", "cat >/dev/null; sleep 30"], stage="s", wait_s=0.3) as p,
    ):
        p.stdin.write(b"x")
        _ = p.stdout
    assert exc.value.log_tail == "still running 0 s after its input ended"
    assert time.monotonic() - started < 5
    assert reaped(p.pid)


def test_pipe_a_missing_command_fails_before_the_block() -> None:
    with pytest.raises(FileNotFoundError):
        pipe(["livestrap-no-such-command"], stage="s")


# -- start ------------------------------------------------------------------------------


def test_start_streams_lines_to_the_log_and_checks_the_status() -> None:
    lines: list[str] = []
    with start(["sh", "-c", "echo one; echo two >&2"], stage="vm", log=lines.append) as proc:
        assert proc.wait(timeout_s=10) == 0
        proc.check()
        assert proc.tail() == "one\ntwo"
    assert lines == ["$ sh -c 'echo one; echo two >&2'", "one", "two"]


def test_start_failure_names_the_stage_with_the_tail() -> None:
    with start(["sh", "-c", "echo boom >&2; exit 2"], stage="vm", log=lambda _: None) as proc:
        assert proc.wait(timeout_s=10) == 2
        with pytest.raises(CommandError) as exc:
            proc.check()
    assert exc.value.stage == "vm" and exc.value.returncode == 2
    assert exc.value.log_tail == "boom"


def test_start_output_to_a_file_with_a_clean_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIVESTRAP_LEAK", "secret")
    out = tmp_path / "qemu.stderr"
    out.write_text("old run\n")
    script = 'echo "${LIVESTRAP_LEAK-none} $X $(pwd)"; echo err >&2; cat'
    with start(["sh", "-c", script], stage="vm", output=out, env={"X": "y"}, cwd=tmp_path) as p:
        assert p.wait(timeout_s=10) == 0
        assert p.tail() == ""  # the output is in the file
    assert out.read_text() == f"none y {tmp_path}\nerr\n"  # truncated; stdin is /dev/null


def test_start_output_goes_to_a_file_or_a_log_not_both(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        start(["true"], stage="s", output=tmp_path / "o", log=lambda _: None)


def test_leaving_the_block_stops_the_whole_group_and_reaps_it() -> None:
    lines: list[str] = []
    started = time.monotonic()
    with start(["sh", "-c", "sleep 30 & echo $!; wait"], stage="vm", log=lines.append) as proc:
        deadline = time.monotonic() + 5
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.running() and proc.returncode is None
        assert proc.wait(timeout_s=0.1) is None
    grandchild = int(lines[1])
    assert time.monotonic() - started < 5
    assert proc.returncode == -15
    assert reaped(proc.pid)
    assert gone(grandchild)


def test_an_error_inside_the_block_still_stops_the_process() -> None:
    with pytest.raises(KeyboardInterrupt), start(["sleep", "30"], stage="vm") as proc:
        raise KeyboardInterrupt
    assert reaped(proc.pid)


def test_stop_kills_what_ignores_sigterm_after_the_grace() -> None:
    script = "trap '' TERM; echo ready; sleep 30"
    lines: list[str] = []
    with start(["sh", "-c", script], stage="vm", log=lines.append, grace_s=0.3) as proc:
        deadline = time.monotonic() + 5
        while len(lines) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        started = time.monotonic()
        assert proc.stop() == -9
        assert 0.3 <= time.monotonic() - started < 5
    assert reaped(proc.pid)


def test_kill_is_at_once() -> None:
    with start(["sleep", "30"], stage="vm") as proc:
        started = time.monotonic()
        assert proc.kill() == -9
        assert time.monotonic() - started < 2
        assert not proc.running()


# -- attempt ----------------------------------------------------------------------------


def test_attempt_returns_the_status_and_never_raises() -> None:
    assert attempt(["true"]) == 0
    assert attempt(["false"]) == 1
    logged: list[str] = []
    assert attempt(["sh", "-c", "echo out; echo err >&2; exit 7"], log=logged.append) == 7
    assert logged == ["$ sh -c 'echo out; echo err >&2; exit 7'", "out", "err"]
    assert attempt(["cat"]) == 0  # stdin is /dev/null: `cat` ends at once


# -- pipe: the wait once the input ended ---------------------------------------------------


def test_pipe_waits_for_a_slow_command_as_long_as_it_takes(tmp_path: Path) -> None:
    """No bound by default: a slow destination at the end of a large export is no error."""
    out = tmp_path / "out"
    started = time.monotonic()
    script = "cat; sleep 1; echo done"
    with out.open("wb") as fh, pipe(["sh", "-c", script], stage="bundle", stdout=fh) as p:
        p.stdin.write(b"data\n")
    assert p.wait_s is None
    assert time.monotonic() - started >= 1
    assert out.read_bytes() == b"data\ndone\n"
    assert reaped(p.pid)


@contextlib.contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise KeyboardInterrupt in this (the main) thread after `seconds`, like a Ctrl-C."""

    def ctrl_c(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, ctrl_c)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize("wait_s", [None, 30.0])
def test_pipe_ctrl_c_while_waiting_for_the_command_kills_it(wait_s: float | None) -> None:
    started = time.monotonic()
    p = pipe(["sh", "-c", "cat >/dev/null; exec sleep 30"], stage="bundle", wait_s=wait_s)
    try:
        with pytest.raises(KeyboardInterrupt), interrupt_after(0.3), p:
            p.stdin.write(b"x")
        assert time.monotonic() - started < 5
        assert reaped(p.pid)
    finally:  # on failure, do not leave our sleep behind
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGKILL)
