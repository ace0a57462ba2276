"""The master's log: one line per record on stderr, `LEVEL logger: message`, which journald
keeps as one entry (it adds the time itself). On a terminal each line starts with the
time too. The level comes from the `log_level` setting.

One line per record: newlines in a message or a traceback are written as `\\n`, so a
report field a node sent can never forge a second line. Secrets (the tokens) registered
with `redact` are replaced by `<redacted>` in every line, whoever logs them.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

LEVELS = ("trace", "debug", "info", "warning", "error", "critical")  # trace: uvicorn's
FORMAT = "%(levelname)s %(name)s: %(message)s"
TTY_FORMAT = "%(asctime)s " + FORMAT
REDACTED = "<redacted>"
_SECRETS: set[str] = set()


def redact(secret: str) -> None:
    """Never write `secret` to the log (a token: the master calls this when it reads one)."""
    if secret:
        _SECRETS.add(secret)


MAX_FIELD = 120  # of a string a node sent, in one log line


def printable(text: str, limit: int = MAX_FIELD) -> str:
    """What a node sent, fit for a log line: escaped (no control characters, which could
    forge lines or drive a terminal) and cut to `limit` characters."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    return cut if cut.isprintable() else cut.encode("unicode_escape").decode("ascii")


def check_level(level: str) -> str:
    """The level name, lower case; ValueError naming the choices otherwise."""
    name = level.strip().lower()
    if name not in LEVELS:
        raise ValueError(f"log_level {level!r}: expected one of {', '.join(LEVELS)}")
    return name


class OneLineFormatter(logging.Formatter):
    """A record as one line, secrets replaced."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for secret in _SECRETS:
            line = line.replace(secret, REDACTED)
        return line.replace("\r", "\\r").replace("\n", "\\n")


def log_format(stream: TextIO) -> str:
    """With the time on a terminal; without under journald or in a file (time is added)."""
    return TTY_FORMAT if stream.isatty() else FORMAT


def logging_config(
    level: str, access_log: bool = False, stream: TextIO | None = None
) -> dict[str, Any]:
    """A logging.config.dictConfig for the master and uvicorn's loggers (uvicorn.run's
    `log_config`): everything through one stderr handler in the one-line format."""
    out = stream or sys.stderr
    name = check_level(level).upper().replace("TRACE", "DEBUG")  # logging has no TRACE
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"line": {"()": OneLineFormatter, "fmt": log_format(out)}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "line", "stream": out}
        },
        "root": {"handlers": ["stderr"], "level": name},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True, "level": name},
            "uvicorn.error": {"handlers": [], "propagate": True, "level": name},
            "uvicorn.access": {
                "handlers": [],
                "propagate": access_log,
                "level": "INFO" if access_log else "WARNING",
            },
        },
    }


def configure_logging(level: str, access_log: bool = False, stream: TextIO | None = None) -> None:
    """Install the master's log format and level (the CLI calls this before the app starts)."""
    import logging.config

    logging.config.dictConfig(logging_config(level, access_log, stream))
