"""`livestrap settings show|set`: the build spec a running master builds from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml

from livestrap.cli.client import (
    DEFAULT_URL,
    ClientDataDir,
    MasterUrl,
    Token,
    call,
    make_client,
    print_json,
)
from livestrap.cli.options import DEFAULT_DATA_DIR, JsonFlag
from livestrap.yamlfile import read_yaml

app = typer.Typer(
    help="Show and change the build settings of a running master.", no_args_is_help=True
)


@app.command("show")
def show(
    effective: Annotated[
        bool, typer.Option("--effective", help="Every default filled in (mirror, suite, ...).")
    ] = False,
    json_out: JsonFlag = False,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print the stored build spec (YAML)."""
    path = "/api/v1/settings/effective" if effective else "/api/v1/settings"
    with make_client(master, token, data_dir) as client:
        spec = call(client, "GET", path)
    if json_out:
        print_json(spec)
    else:
        typer.echo(yaml.safe_dump(spec, sort_keys=False), nl=False)


@app.command("set")
def set_(
    spec_file: Annotated[Path, typer.Argument(help="Build spec (YAML), as for `livestrap build`.")],
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Replace the master's build spec with SPEC_FILE.

    The master checks it as `livestrap spec check` would; paths in it (keys, scripts,
    extra dirs) are paths on the master, relative ones taken from its data dir.
    """
    data = read_yaml(spec_file)
    with make_client(master, token, data_dir) as client:
        call(client, "PUT", "/api/v1/settings", json={} if data is None else data)
    typer.echo(f"settings saved from {spec_file}")
