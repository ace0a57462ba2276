"""`livestrap config show`: the settings `livestrap serve` would run with, and the source
of each value (flag, env LIVESTRAP_X, file PATH, default)."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import typer

from livestrap.cli.options import ConfigFile
from livestrap.cli.output import Column, TableView, output_option, print_rows
from livestrap.master.config_load import config_file, effective, load_settings, origins

app = typer.Typer(help="The master's configuration (docs/config.md).", no_args_is_help=True)

ConfigFormat = Literal["table", "json"]
VIEW = TableView(
    columns=(
        Column("KEY", lambda row: str(row["key"])),
        Column("VALUE", lambda row: shown(row["value"]), wraps=True),
        Column("SOURCE", lambda row: str(row["source"]), wraps=True),
    ),
    key="key",
)


def shown(value: Any) -> str:
    """A value as the file would spell it, "-" for none."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return json.dumps(value)


@app.command("show")
def show(
    config: ConfigFile = None,
    output: Annotated[ConfigFormat | None, output_option(("table", "json"))] = None,
) -> None:
    """Print every setting, its effective value (a database password as ***) and where it
    came from, as `livestrap serve --config PATH` would see them without flags."""
    path = config_file(config)
    settings = load_settings({}, path)
    rows = effective(settings, origins({}, path))
    print_rows(output or "table", rows, VIEW)
