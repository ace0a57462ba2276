"""run: streaming commands, failures named by stage, cancellation, and short queries."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from livestrap import run as run_mod
from livestrap.errors import BuildCancelled, BuildError, CommandError
from livestrap.run import BuildLog, clean_env, query, run

pytestmark = pytest.mark.unit


def test_run_streams_lines_and_returns_the_tail() -> None:
    lines: list[str] = []
    tail = run(["sh", "-c", "echo one; echo two >&2; printf three"], stage="s", log=lines.append)
    assert lines == ["$ sh -c 'echo one; echo two >&2; printf three'", "one", "two", "three"]
    assert tail == ["one", "two", "three"]


def test_run_tail_is_bounded() -> None:
    lines: list[str] = []
    n = run_mod.TAIL_LINES + 10
    tail = run(["sh", "-c", f"seq 1 {n}"], stage="s", log=lines.append)
    assert len(lines) == n + 1
    assert tail == [str(i) for i in range(11, n + 1)]


def test_run_failure_raises_command_error() -> None:
    lines: list[str] = []
    with pytest.raises(CommandError) as exc:
        run(["sh", "-c", "echo about to fail; exit 3"], stage="squashfs", log=lines.append)
    err = exc.value
    assert isinstance(err, BuildError)
    assert err.stage == "squashfs"
    assert err.returncode == 3
    assert err.argv == ["sh", "-c", "echo about to fail; exit 3"]
    assert err.log_tail == "about to fail"
    assert str(err) == "stage squashfs: sh exited with status 3"
    assert lines[-1] == "about to fail"


def test_run_passes_env_cwd_and_stdin(tmp_path: Path) -> None:
    lines: list[str] = []
    tail = run(
        ["sh", "-c", 'echo "$LIVESTRAP_X $LC_ALL $(pwd)"; cat; echo "${HOME_SET-unset}"'],
        stage="s",
        log=lines.append,
        env={"LIVESTRAP_X": "hello"},
        cwd=tmp_path,
        stdin_text="from stdin\n",
    )
    assert tail == [f"hello C.UTF-8 {tmp_path}", "from stdin", "unset"]


def test_run_uses_a_clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESTRAP_LEAK", "secret")
    tail = run(["sh", "-c", 'echo "${LIVESTRAP_LEAK-none}"'], stage="s", log=lambda line: None)
    assert tail == ["none"]
    assert clean_env({"A": "b"}) == {**run_mod.BASE_ENV, "A": "b"}


def test_command_error_names_the_wrapped_command() -> None:
    argv = ["unshare", "--mount", "--propagation", "private", "--", "mmdebstrap", "--verbose"]
    err = CommandError("rootfs", argv, 1, "E: failed")
    assert str(err) == "stage rootfs: mmdebstrap exited with status 1"
    assert err.log_tail == "E: failed"
    plain = CommandError("rootfs", ["unshare", "--mount"], 2, "")
    assert str(plain) == "stage rootfs: unshare exited with status 2"
    assert str(CommandError("x", ["mksquashfs", "--", "y"], 1, "")) == (
        "stage x: mksquashfs exited with status 1"
    )


def test_run_honours_cancel() -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        with pytest.raises(BuildCancelled) as exc:
            run(["sleep", "30"], stage="rootfs", log=lambda line: None, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert exc.value.stage == "rootfs"
    assert str(exc.value) == "stage rootfs: build cancelled (cancel requested)"


def test_run_with_unset_cancel_completes() -> None:
    assert run(["echo", "ok"], stage="s", log=lambda line: None, cancel=threading.Event()) == ["ok"]


def test_query_returns_stdout_and_logs_stderr() -> None:
    lines: list[str] = []
    out = query(["sh", "-c", "echo a; echo b; echo warn >&2"], stage="bootfiles", log=lines.append)
    assert out == ["a", "b"]
    assert lines == ["$ sh -c 'echo a; echo b; echo warn >&2'", "warn"]


def test_query_failure() -> None:
    with pytest.raises(CommandError) as exc:
        query(["sh", "-c", "echo nope >&2; exit 4"], stage="metadata", log=lambda line: None)
    assert exc.value.stage == "metadata"
    assert exc.value.returncode == 4
    assert exc.value.log_tail == "nope\n"


def test_build_log_appends_and_echoes(tmp_path: Path) -> None:
    echoed: list[str] = []
    path = tmp_path / "logs/sub/build.log"
    log = BuildLog(path, echo=echoed.append)
    log.write("first\n")
    log.write("second")
    # flushed at once, each line stamped with the seconds since the log was opened
    assert re.fullmatch(r"\[ +\d+\.\d\] first\n\[ +\d+\.\d\] second\n", path.read_text())
    log.close()
    BuildLog(path).write("third")
    assert path.read_text().splitlines()[-1].endswith("] third")
    assert echoed == ["first\n", "second"]
