"""`livestrap token new admin|discovery`: replace a token file; running masters take it.

The token is never printed (terminals end up in logs and screen shares): read it from the
file, as on first start.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from livestrap.cli.options import DEFAULT_DATA_DIR, ExistingDataDir
from livestrap.datadir import DataDir as DataDirLayout
from livestrap.master.refusals import FLUSH_S
from livestrap.master.tokens import replace_token

app = typer.Typer(help="The master's tokens.", no_args_is_help=True)


class TokenKind(StrEnum):
    admin = "admin"
    discovery = "discovery"


AFTER = {
    TokenKind.admin: "the console sessions made before it end",
    TokenKind.discovery: (
        "running nodes booted with the old one are refused (offline, out of reach of actions) "
        "until they boot again, and a tree written by `netboot tftp-tree` must be written "
        "again"
    ),
}


@app.command("new")
def new(
    kind: Annotated[TokenKind, typer.Argument(help="Which token: admin or discovery.")],
    data_dir: ExistingDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Replace the admin or discovery token with a new random one. Every master on the data
    dir takes it within a few seconds, without a restart, and refuses the old one."""
    layout = DataDirLayout(data_dir)
    path = layout.admin_token if kind is TokenKind.admin else layout.discovery_token
    replace_token(path)
    typer.echo(
        f"{kind.value} token replaced: {path} (read it there; it is not printed). Running "
        f"masters take it within {FLUSH_S * 2:.0f} s and refuse the old one; {AFTER[kind]}."
    )
