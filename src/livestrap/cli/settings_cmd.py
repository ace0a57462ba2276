"""`livestrap settings ...` (being written): talks to a running master."""

from __future__ import annotations

import typer

app = typer.Typer(help="settings on a running master.", no_args_is_help=True)
