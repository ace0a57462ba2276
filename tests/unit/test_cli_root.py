"""The top of the command line: --version and shell completion."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

import livestrap
from livestrap.cli import app

pytestmark = pytest.mark.unit


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and result.stdout == f"livestrap {livestrap.__version__}\n"


def test_completion_is_offered() -> None:
    result = run("--help")
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout
