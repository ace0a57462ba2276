"""`livestrap nodes ...` (being written): talks to a running master."""

from __future__ import annotations

import typer

app = typer.Typer(help="nodes on a running master.", no_args_is_help=True)
