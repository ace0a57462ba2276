"""`livestrap builds list|show|log|start|cancel`: build jobs on a running master."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import typer

from livestrap.cli import tables
from livestrap.cli.client import raise_for_refusal, reaching
from livestrap.cli.describe import describe_build
from livestrap.cli.options import id_argument
from livestrap.cli.output import JsonAlias, ListOutput, Quiet, ShowOutput, chosen_format, print_one
from livestrap.cli.remote import list_remote, remote_app, remote_of, show_remote
from livestrap.errors import SpecError
from livestrap.yamlfile import read_yaml

app = remote_app("Build jobs on a running master.")
BuildId = Annotated[str, id_argument("builds")]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until it ends.")]
StartOutput = Annotated[
    Literal["value", "json", "yaml"] | None,
    typer.Option(
        "--output",
        "-o",
        help="value: the new build's id; json, yaml: the build (default: value).",
        show_default=False,
    ),
]


def stream_log(client: httpx.Client, build_id: str, follow: bool) -> None:
    """Print the build's log line by line as the master sends it."""
    path = f"/api/v1/builds/{build_id}/log"
    timeout = httpx.Timeout(60, read=None)  # a quiet stage may print nothing for minutes
    params = {"follow": str(follow).lower()}
    with reaching(client), client.stream("GET", path, params=params, timeout=timeout) as resp:
        if resp.status_code >= 400:
            resp.read()
            raise_for_refusal(resp, "GET", path)
        for line in resp.iter_lines():
            sys.stdout.write(line + "\n")
            sys.stdout.flush()


@app.command("list")
def list_builds(
    ctx: typer.Context,
    output: ListOutput = None,
    quiet: Quiet = False,
    json_alias: JsonAlias = False,
) -> None:
    """Builds, newest first: state, stage, progress, image and age."""
    fmt = chosen_format(output, "table", json_alias=json_alias, quiet=quiet)
    list_remote(ctx, "/api/v1/builds", tables.BUILDS, fmt)


@app.command("show")
def show(ctx: typer.Context, build_id: BuildId, output: ShowOutput = None) -> None:
    """One build: state, stage, image, times, error and what it builds (-o yaml: its spec)."""
    show_remote(ctx, f"/api/v1/builds/{build_id}", output, describe_build)


@app.command("log")
def log(ctx: typer.Context, build_id: BuildId, follow: Follow = False) -> None:
    """Print a build's log; with --follow, live until the build ends."""
    stream_log(remote_of(ctx).client, build_id, follow)


def _overrides(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = read_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise SpecError(f"{path} must be a mapping of spec keys to values")
    return data


@app.command("start")
def start(
    ctx: typer.Context,
    activate: Annotated[bool, typer.Option("--activate", help="Activate the new image.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if nothing changed since an image.")
    ] = False,
    overrides: Annotated[
        Path | None,
        typer.Option(
            "--overrides", help="YAML with spec keys that replace the settings' for this build."
        ),
    ] = None,
    follow: Follow = False,
    output: StartOutput = None,
    json_alias: JsonAlias = False,
) -> None:
    """Queue a build of the master's settings; prints its id (or follows its log)."""
    fmt = chosen_format(output, "value", json_alias=json_alias)
    body = {"overrides": _overrides(overrides), "activate": activate, "force": force}
    remote = remote_of(ctx)
    started = remote.call("POST", "/api/v1/builds", json=body)
    print_one(fmt, started, describe_build)
    if not follow:
        return
    stream_log(remote.client, started["id"], follow=True)
    ended = remote.call("GET", f"/api/v1/builds/{started['id']}")
    summary = {k: ended[k] for k in ("state", "image_id", "error")}
    typer.echo(json.dumps(summary), err=True)
    if ended["state"] != "succeeded":
        raise typer.Exit(1)


@app.command("cancel")
def cancel(ctx: typer.Context, build_id: BuildId) -> None:
    """Cancel a queued or running build (its commands are stopped, its tree removed)."""
    b = remote_of(ctx).call("DELETE", f"/api/v1/builds/{build_id}")
    typer.echo(f"{b['id']}: {'cancelled' if b['state'] == 'cancelled' else 'cancelling'}")
