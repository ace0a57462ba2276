"""`livestrap settings show|set`: the build spec a running master builds from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from livestrap.cli.output import DocumentOutput, JsonAlias, chosen_format, print_document
from livestrap.cli.remote import remote_app, remote_of
from livestrap.cli.spec_upload import upload_spec_files
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

    The files and folders it names by relative path (keys, scripts, extra dirs) are
    uploaded first into a new folder DATA_DIR/spec/sets/HASH on the master (its specs may
    name only DATA_DIR/spec), and the spec's paths point there; then the master checks the
    spec as `livestrap spec check` would. What the stored settings use is never changed.
    """
    data = read_yaml(spec_file)
    remote = remote_of(ctx)

    def put(name: str, body: Any, content_type: str) -> object:
        path = "/api/v1/settings/files/" + quote(name)
        return remote.call("PUT", path, content=body, headers={"Content-Type": content_type})

    listed: dict[str, set[str]] = {}

    def present(name: str) -> bool:
        """Asks only about the upload's own folder (sets/HASH), once, never the whole tree."""
        folder = "/".join(name.split("/")[:2])
        if folder not in listed:
            rows = remote.call("GET", "/api/v1/settings/files", params={"prefix": folder})
            listed[folder] = {str(r.get("path")) for r in rows if isinstance(r, dict)}
        return name in listed[folder]

    if isinstance(data, dict):
        for name, sent in upload_spec_files(data, spec_file.resolve().parent, put, present):
            typer.echo(f"uploaded {name}" if sent else f"{name}: on the master already", err=True)
    remote.call("PUT", "/api/v1/settings", json={} if data is None else data)
    typer.echo(f"settings saved from {spec_file}")
