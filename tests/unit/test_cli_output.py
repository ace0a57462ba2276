"""cli.output: formats, plain and terminal tables, ids cut to unique prefixes."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
import typer
import yaml
from rich.console import Console
from rich.text import Text

from livestrap.cli import output, tables
from livestrap.cli.output import (
    Column,
    TableView,
    chosen_format,
    field_of,
    plain_table,
    print_one,
    print_rows,
    print_table,
    unique_prefix_length,
)

pytestmark = pytest.mark.unit

VIEW = TableView(
    columns=(
        Column("ID", field_of("id"), is_id=True),
        Column("STATE", field_of("state"), styles={"bad": "red"}),
        Column("NOTE", field_of("note"), wraps=True),
        Column("EXTRA", field_of("extra"), wide_only=True),
    ),
    empty="no things",
)
ROWS = [
    {"id": "4c4c4544-0042-3510-8052-b2c04f4d4e31", "state": "good", "note": "short", "extra": 1},
    {"id": "4c4c4544-0042-3510-8052-000000000000", "state": "bad", "note": None, "extra": 2},
]


def test_plain_table_keeps_every_value_whole() -> None:
    lines = plain_table(["A", "LONGER"], [["x" * 50, "1"], ["y", ""]])
    assert lines == ["A" + " " * 49 + "  LONGER", "x" * 50 + "  1", "y"]


def test_unique_prefix_length() -> None:
    assert unique_prefix_length(["abcdefgh1", "abcdefgh2"]) == 9
    assert unique_prefix_length(["a1", "b2"]) == 8  # never below 8, like git's short ids
    assert unique_prefix_length(["abcdef0123", "abcdef9999"]) == 8
    assert unique_prefix_length([]) == 8


def test_piped_table_is_plain_whole_and_uncoloured(capsys: pytest.CaptureFixture[str]) -> None:
    print_table(ROWS, VIEW, wide=False)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "ID                                    STATE  NOTE",
        "4c4c4544-0042-3510-8052-b2c04f4d4e31  good   short",
        "4c4c4544-0042-3510-8052-000000000000  bad    -",
    ]
    assert "\x1b" not in out


def test_wide_adds_the_hidden_columns(capsys: pytest.CaptureFixture[str]) -> None:
    print_rows("wide", ROWS, VIEW)
    assert capsys.readouterr().out.splitlines()[0].split() == ["ID", "STATE", "NOTE", "EXTRA"]


def terminal(rows: list[dict[str, Any]], wide: bool, width: int) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system="standard")
    print_table(rows, VIEW, wide, console=console)
    return buffer.getvalue()


def plain(ansi: str) -> str:
    return "\n".join(line.rstrip() for line in Text.from_ansi(ansi).plain.splitlines())


def test_terminal_table_cuts_ids_and_colours_states() -> None:
    out = terminal(ROWS, wide=False, width=80)
    assert "\x1b[31mbad" in out  # red
    assert plain(out).splitlines()[1].split() == ["4c4c4544-0042-3510-8052-b", "good", "short"]


def test_terminal_table_wraps_free_text_to_fit_80_columns() -> None:
    rows = [{**ROWS[0], "note": "word " * 30}]
    out = plain(terminal(rows, wide=False, width=80))
    assert all(len(line) <= 80 for line in out.splitlines())
    assert "good" in out and "…" not in out


def test_terminal_too_narrow_to_wrap_prints_plain_lines() -> None:
    out = terminal(ROWS, wide=False, width=30)
    assert ROWS[0]["id"] in out and "\x1b" not in out


def test_terminal_wide_keeps_ids_whole_past_the_edge() -> None:
    out = plain(terminal(ROWS, wide=True, width=40))
    assert ROWS[0]["id"] in out


def test_empty_list_is_said_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    print_rows("table", [], VIEW)
    assert capsys.readouterr() == ("", "no things\n")
    print_rows("json", [], VIEW)
    assert capsys.readouterr().out == "[]\n"


def test_json_yaml_value(capsys: pytest.CaptureFixture[str]) -> None:
    print_rows("json", ROWS, VIEW)
    assert json.loads(capsys.readouterr().out) == ROWS
    print_rows("yaml", ROWS, VIEW, data={"all": ROWS})
    assert yaml.safe_load(capsys.readouterr().out) == {"all": ROWS}
    print_rows("value", ROWS, VIEW)
    assert capsys.readouterr().out.splitlines() == [r["id"] for r in ROWS]


def test_print_one(capsys: pytest.CaptureFixture[str]) -> None:
    print_one("describe", ROWS[0], lambda item: [f"Id: {item['id']}"])
    assert capsys.readouterr().out == f"Id: {ROWS[0]['id']}\n"
    print_one("value", ROWS[0], lambda item: [])
    assert capsys.readouterr().out == f"{ROWS[0]['id']}\n"
    print_one("yaml", ROWS[0], lambda item: [])
    assert yaml.safe_load(capsys.readouterr().out) == ROWS[0]


def test_chosen_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert chosen_format(None, "table") == "table"
    assert chosen_format("wide", "table") == "wide"
    assert chosen_format(None, "table", quiet=True) == "value"
    assert capsys.readouterr().err == ""
    assert chosen_format(None, "table", json_alias=True) == "json"
    assert capsys.readouterr().err == "warning: --json is deprecated; use -o json\n"
    with pytest.raises(typer.BadParameter, match="-q prints ids"):
        chosen_format("json", "table", quiet=True)
    with pytest.raises(typer.BadParameter, match="disagree"):
        chosen_format("yaml", "table", json_alias=True)


def test_node_table_columns_at_80_and_wide() -> None:
    narrow = [c.header for c in tables.NODES.columns if not c.wide_only]
    assert narrow == ["ID", "STATUS", "MODEL", "BOOT MAC", "IP", "LAST SEEN"]
    wide = [c.header for c in tables.NODES.columns]
    assert {"SERIAL", "IMAGE", "AGENT", "BOOTS", "FIRST SEEN"} <= set(wide)


def test_timeline_rows_offsets_from_the_first_event() -> None:
    events = [
        {"kind": "script", "at": "2024-05-01T12:00:00Z", "ip": "10.0.2.15",
         "mac": "aa:bb:cc:dd:ee:ff", "image_id": "img", "detail": {}},
        {"kind": "report", "at": "2024-05-01T12:00:12.34Z", "ip": "10.0.2.15", "mac": None,
         "image_id": None, "detail": {"boot": 1}},
    ]  # fmt: skip
    rows = tables.timeline_rows(events)
    cells = [[c.cell(r) for c in tables.TIMELINE.columns if not c.wide_only] for r in rows]
    assert cells[0][:2] == ["+0.0s", "script"]
    assert cells[1][:2] == ["+12.3s", "report"] and cells[1][-1] == "boot=1"
    assert cells[1][3] == "-"  # no MAC
    assert tables.timeline_rows([]) == []


def test_module_doc_names_the_formats() -> None:
    assert output.__doc__ and "-o value" in output.__doc__
