"""`livestrap builds ...` (being written): talks to a running master."""

from __future__ import annotations

import typer

app = typer.Typer(help="builds on a running master.", no_args_is_help=True)
