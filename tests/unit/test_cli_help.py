"""Every command's --help shows its texts whole: rich must not eat `[default: ...]` as markup."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from livestrap.cli import app

pytestmark = pytest.mark.unit


def commands(cmd: Any, path: list[str]) -> Iterator[tuple[list[str], Any]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from commands(sub, [*path, name])


ALL = list(commands(typer.main.get_command(app), []))


def flat(text: str) -> str:
    """The help without box drawing and line breaks, so wrapped text reads as one line."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def test_every_command_is_walked() -> None:
    names = {" ".join(path) for path, _ in ALL}
    assert {"serve", "nodes list", "images list", "builds start", "vm boot"} <= names


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: " ".join(p) or "livestrap")
def test_help_shows_every_option_text(path: list[str]) -> None:
    cmd = dict((tuple(p), c) for p, c in ALL)[tuple(path)]
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    shown = flat(result.output)
    for param in cmd.params:
        help_text = getattr(param, "help", None)
        if help_text and not getattr(param, "hidden", False):
            assert flat(help_text.replace("\\[", "[")) in shown, (param.name, result.output)
    if cmd.help:
        first = cmd.help.split("\n\n")[0]
        assert flat(first) in shown


def test_defaults_in_brackets_survive() -> None:
    serve = flat(CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "100"}).output)
    for text in ("[default: SQLite in DATA_DIR]", "[default: Host]", "[default: DATA_DIR/cache]"):
        assert text in serve
    nodes = flat(CliRunner().invoke(app, ["nodes", "--help"]).output)  # the group's option
    assert "[default: read from DATA_DIR/admin.token]" in nodes
