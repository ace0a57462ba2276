"""How every read command prints: `-o table|wide|json|yaml|value`, one table style.

In a terminal a table is a rich table that fits the width (long text wraps, ids are cut to
a unique prefix, which every command accepts); piped, it is plain columns two spaces
apart with every value whole and no colour, so `grep`, `awk` and `wc -l` see the data.
`-o value` (or `-q`) prints the ids alone, one per line, for scripts.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import typer
import yaml
from rich.console import Console
from rich.table import Table
from rich.text import Text

from livestrap.cli.options import warn_deprecated

# Each command offers the formats that mean something for it (typer lists them in --help).
ListFormat = Literal["table", "wide", "json", "yaml", "value"]
ShortListFormat = Literal["table", "json", "yaml", "value"]  # the table hides no column
EventsFormat = Literal["table", "wide", "json", "yaml"]  # rows without ids
ShowFormat = Literal["describe", "json", "yaml", "value"]
DocumentFormat = Literal["yaml", "json"]

_FORMATS = {
    "table": "columns that fit the terminal",
    "wide": "every column",
    "json": "the data, as the API gives it",
    "yaml": "the same as YAML",
    "value": "the ids alone, one per line",
    "describe": "a summary to read",
}


def output_option(formats: tuple[str, ...], **meaning: str) -> Any:
    """-o FORMAT, its help naming each format (the first is the default)."""
    said = {**_FORMATS, **meaning}
    text = "; ".join(f"{f}: {said[f]}" for f in formats) + f" (default: {formats[0]})."
    return typer.Option("--output", "-o", help=text, show_default=False)


ListOutput = Annotated[ListFormat | None, output_option(("table", "wide", "json", "yaml", "value"))]
ShortListOutput = Annotated[
    ShortListFormat | None, output_option(("table", "json", "yaml", "value"))
]
EventsOutput = Annotated[EventsFormat | None, output_option(("table", "wide", "json", "yaml"))]
ShowOutput = Annotated[
    ShowFormat | None,
    output_option(("describe", "json", "yaml", "value"), value="the full id alone"),
]
DocumentOutput = Annotated[DocumentFormat | None, output_option(("yaml", "json"))]
Quiet = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only the ids, one per line (same as -o value).")
]
JsonAlias = Annotated[bool, typer.Option("--json", hidden=True, help="Deprecated: use -o json.")]

MIN_ID_CHARS = 8  # as git: enough that a prefix stays unique for a while
MIN_WRAP_CHARS = 12  # narrower, wrapped text is unreadable: print plain lines instead


def chosen_format(
    output: str | None, default: str, *, json_alias: bool = False, quiet: bool = False
) -> str:
    """-o wins; --json (deprecated) means json; -q means value; else the command's default."""
    if json_alias:
        warn_deprecated("--json", "-o json")
        if output not in (None, "json"):
            raise typer.BadParameter(f"--json and -o {output} disagree", param_hint="--json")
        output = "json"
    if quiet:
        if output not in (None, "value"):
            raise typer.BadParameter(
                f"-q prints ids; it cannot go with -o {output}", param_hint="-q"
            )
        output = "value"
    return output or default


@dataclass(frozen=True)
class Column:
    """One column: its header, how a row's cell reads, and how it behaves in a terminal."""

    header: str
    cell: Callable[[Mapping[str, Any]], str]
    wide_only: bool = False  # shown by -o wide only
    wraps: bool = False  # may wrap in a narrow terminal (free text); others never do
    styles: Mapping[str, str] = field(default_factory=dict)  # cell text -> colour (terminal)
    is_id: bool = False  # cut to a unique prefix in a terminal's (not wide) table


@dataclass(frozen=True)
class TableView:
    """A resource as a table: its columns, the key -o value prints, and what "none" reads."""

    columns: tuple[Column, ...]
    key: str = "id"
    empty: str = "nothing to show"


def field_of(key: str, default: str = "-") -> Callable[[Mapping[str, Any]], str]:
    """A cell reading `row[key]` as text ("-" when missing or empty)."""

    def cell(row: Mapping[str, Any]) -> str:
        value = row.get(key)
        return default if value is None or value == "" else str(value)

    return cell


def unique_prefix_length(ids: Sequence[str], minimum: int = MIN_ID_CHARS) -> int:
    """The shortest length >= minimum at which every id's prefix differs from the others'."""
    longest = max((len(i) for i in ids), default=0)
    for length in range(minimum, longest):
        if len({i[:length] for i in ids}) == len(set(ids)):
            return length
    return max(longest, minimum)


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns two spaces apart, every value whole, the last column not padded."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = []
    for cells in (headers, *rows):
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
        lines.append("  ".join([*padded, cells[-1]]).rstrip())
    return lines


def printable(text: str) -> str:
    """Text made safe for a terminal: what nodes report is hostile, and an ESC or BEL in a
    vendor string would otherwise drive the operator's terminal (colours, title, links).
    Every character that is not printable becomes U+FFFD."""
    return text if text.isprintable() else "".join(c if c.isprintable() else "\ufffd" for c in text)


def _cells(rows: Sequence[Mapping[str, Any]], view: TableView, wide: bool) -> list[list[str]]:
    return [[printable(c.cell(r)) for c in view.columns if wide or not c.wide_only] for r in rows]


def terminal_table(
    rows: Sequence[Mapping[str, Any]], view: TableView, wide: bool, width: int
) -> tuple[Table, int] | None:
    """The rich table for a terminal `width` columns wide, and the width to print it at:
    no box, bold headers, coloured states, ids cut to a unique prefix and free text wrapped
    so the rest fits. Wide tables keep every value whole (lines may pass the edge, as
    kubectl's do). None when even wrapping cannot make it fit: plain lines are better."""
    columns = [c for c in view.columns if wide or not c.wide_only]
    cells = _cells(rows, view, wide)
    if not wide:
        for i, col in enumerate(columns):
            if col.is_id:
                cut = unique_prefix_length([r[i] for r in cells])
                for r in cells:
                    r[i] = r[i][:cut]
    widths = [max(len(c.header), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    gaps = 2 * (len(columns) - 1)
    natural = sum(widths) + gaps
    if natural > width and not wide:
        fixed = sum(w for w, c in zip(widths, columns, strict=True) if not c.wraps) + gaps
        wrapping = sum(1 for c in columns if c.wraps)
        if not wrapping or width - fixed < MIN_WRAP_CHARS * wrapping:
            return None
    table = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for col in columns:
        table.add_column(col.header, no_wrap=not col.wraps, overflow="fold")
    for raw, shown in zip(_cells(rows, view, wide), cells, strict=True):
        table.add_row(  # Text: node-reported strings are data, never rich markup
            *(
                Text(v, style=c.styles.get(r, ""))
                for c, r, v in zip(columns, raw, shown, strict=True)
            )
        )
    return table, max(width, natural) if wide else min(width, natural)


def print_table(
    rows: Sequence[Mapping[str, Any]], view: TableView, wide: bool, console: Console | None = None
) -> None:
    """A terminal gets a rich table; anything else plain columns (see the module doc)."""
    if not rows:
        typer.echo(view.empty, err=True)
        return
    if console is None and sys.stdout.isatty():
        console = Console()
    fitted = terminal_table(rows, view, wide, console.width) if console else None
    if console is not None and fitted is not None:
        table, console.width = fitted  # wide: wider than the terminal, which wraps the lines
        console.print(table)
        return
    headers = [c.header for c in view.columns if wide or not c.wide_only]
    for line in plain_table(headers, _cells(rows, view, wide)):
        if console is not None:
            console.out(line, highlight=False)  # no markup, no wrapping
        else:
            typer.echo(line)


def print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2))


def print_yaml(data: Any) -> None:
    typer.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), nl=False)


def print_document(fmt: str, data: Any) -> None:
    """A whole document (a spec, metadata): yaml or json."""
    if fmt == "json":
        print_json(data)
    else:
        print_yaml(data)


def print_rows(
    fmt: str, rows: Sequence[Mapping[str, Any]], view: TableView, data: Any = None
) -> None:
    """A list in the chosen format; json/yaml print `data` (default: the rows) unchanged."""
    if fmt in ("json", "yaml"):
        print_document(fmt, list(rows) if data is None else data)
    elif fmt == "value":
        for row in rows:
            typer.echo(str(row[view.key]))
    else:
        print_table(rows, view, wide=fmt == "wide")


def print_one(
    fmt: str,
    item: Mapping[str, Any],
    describe: Callable[[Mapping[str, Any]], list[str]],
    key: str = "id",
) -> None:
    """One thing: described for people, whole as json/yaml, or its id alone."""
    if fmt in ("json", "yaml"):
        print_document(fmt, dict(item))
    elif fmt == "value":
        typer.echo(str(item[key]))
    else:
        for line in describe(item):
            typer.echo(printable(line))
