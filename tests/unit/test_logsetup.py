"""The master's log: one line per record, levels, secrets never written, refusals
rate-limited, and the start of a master names its token files, never the tokens."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest

from livestrap.master.app import make_state
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.logsetup import (
    FORMAT,
    OneLineFormatter,
    check_level,
    logging_config,
    printable,
    redact,
)
from livestrap.master.refusals import LOG_LINES_PER_WINDOW, RefusalLog

pytestmark = pytest.mark.unit


def line_of(msg: str, *args: object) -> str:
    record = logging.LogRecord("livestrap.master", logging.WARNING, __file__, 1, msg, args, None)
    return OneLineFormatter(FORMAT).format(record)


def test_one_line_per_record_in_journald_form() -> None:
    assert line_of("node %s says %s", "n1", "a\nINFO forged: line\r") == (
        "WARNING livestrap.master: node n1 says a\\nINFO forged: line\\r"
    )


def test_secrets_are_redacted_whoever_logs_them() -> None:
    redact("s3cret-token-value-for-the-test-0123456789")
    assert "s3cret" not in line_of("got %s", "s3cret-token-value-for-the-test-0123456789")
    assert "<redacted>" in line_of("got %s", "s3cret-token-value-for-the-test-0123456789")


def test_levels_and_time_only_on_a_terminal() -> None:
    assert check_level(" INFO ") == "info"
    with pytest.raises(ValueError, match="debug, info, warning, error, critical"):
        check_level("verbose")

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    plain = logging_config("warning", stream=io.StringIO())
    assert plain["formatters"]["line"]["fmt"] == FORMAT
    assert plain["root"]["level"] == "WARNING"
    assert logging_config("info", stream=Tty())["formatters"]["line"]["fmt"].startswith(
        "%(asctime)s"
    )
    assert plain["loggers"]["uvicorn.access"]["propagate"] is False  # access log off by default


def test_printable_escapes_and_cuts() -> None:
    assert printable("Dell\x1b]0;x\x07") == "Dell\\x1b]0;x\\x07"
    assert printable("x" * 200) == "x" * 120 + "..."


def test_refusals_log_one_line_per_address_per_window(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    now = [1000.0]
    refusals = RefusalLog(Database(f"sqlite:///{tmp_path / 'x.db'}"), 300, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, "livestrap.master"):
        for _ in range(50):
            refusals.record("wrong discovery token", "10.0.0.1", "52:54:00:00:00:01", None)
        refusals.record("no discovery token", "10.0.0.2", None, None)
        now[0] += 301
        refusals.record("wrong discovery token", "10.0.0.1", None, None)
        for i in range(LOG_LINES_PER_WINDOW + 50):
            refusals.record("no discovery token", f"10.1.{i // 250}.{i % 250}", None, None)
    lines = [r.getMessage() for r in caplog.records]
    assert sum("10.0.0.1" in line for line in lines) == 2
    assert lines[0].startswith("refused discovery report from 10.0.0.1: wrong discovery token "
                               "(MAC 52:54:00:00:00:01)")  # fmt: skip
    assert len(lines) == 2 + LOG_LINES_PER_WINDOW  # then the cap of a window, all addresses
    assert refusals.pending() == 50 + 1 + 1 + LOG_LINES_PER_WINDOW + 50  # all still counted


def test_first_start_names_token_files_never_tokens(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = MasterSettings(data_dir=tmp_path / "data")
    with caplog.at_level(logging.DEBUG):
        state = make_state(cfg)
        migrate(state.db.engine)
        state.db.dispose()
        make_state(cfg).db.dispose()  # second start: nothing made, nothing said
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for token in (state.admin_token, state.discovery_token):
        assert token not in text
    assert f"admin token made: {cfg.admin_token_file}" in text
    assert f"discovery token made: {cfg.discovery_token_file}" in text
    assert text.count("token made") == 4  # caplog.text and the messages: once each
