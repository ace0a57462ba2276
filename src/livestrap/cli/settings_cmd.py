"""`livestrap settings show|set`: the build spec a running master builds from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from livestrap.cli.output import DocumentOutput, JsonAlias, chosen_format, print_document
from livestrap.cli.remote import remote_app, remote_of
from livestrap.yamlfile import read_yaml

app = remote_app("Show and change the build settings of a running master.")


@app.command("show")
def show(
    ctx: typer.Context,
    effective: Annotated[
        bool, typer.Option("--effective", help="Every default filled in (mirror, suite, ...).")
    ] = False,
    output: DocumentOutput = None,
    json_alias: JsonAlias = False,
) -> None:
    """Print the stored build spec (YAML, or -o json)."""
    fmt = chosen_format(output, "yaml", json_alias=json_alias)
    path = "/api/v1/settings/effective" if effective else "/api/v1/settings"
    print_document(fmt, remote_of(ctx).call("GET", path))


@app.command("set")
def set_(
    ctx: typer.Context,
    spec_file: Annotated[Path, typer.Argument(help="Build spec (YAML), as for `livestrap build`.")],
) -> None:
    """Replace the master's build spec with SPEC_FILE.

    The master checks it as `livestrap spec check` would; paths in it (keys, scripts,
    extra dirs) are paths on the master, relative ones taken from its data dir.
    """
    data = read_yaml(spec_file)
    remote_of(ctx).call("PUT", "/api/v1/settings", json={} if data is None else data)
    typer.echo(f"settings saved from {spec_file}")
