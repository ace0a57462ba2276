"""`livestrap builds list|show|log|start|cancel`: build jobs on a running master."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from livestrap.cli.client import (
    DEFAULT_URL,
    ClientDataDir,
    MasterError,
    MasterUrl,
    Token,
    call,
    make_client,
    print_json,
)
from livestrap.cli.options import DEFAULT_DATA_DIR, JsonFlag
from livestrap.errors import SpecError
from livestrap.yamlfile import read_yaml

app = typer.Typer(help="Build jobs on a running master.", no_args_is_help=True)
BuildId = Annotated[str, typer.Argument(help="Build id (see `livestrap builds list`).")]
Follow = Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until it ends.")]
STYLE = {"succeeded": "green", "failed": "red", "running": "cyan", "queued": "yellow"}


def _when(iso: str | None) -> str:
    return "-" if not iso else f"{datetime.fromisoformat(iso).astimezone():%Y-%m-%d %H:%M:%S}"


def stream_log(client: httpx.Client, build_id: str, follow: bool) -> None:
    """Print the build's log line by line as the master sends it."""
    path = f"/api/v1/builds/{build_id}/log"
    timeout = httpx.Timeout(60, read=None)  # a quiet stage may print nothing for minutes
    try:
        with client.stream(
            "GET", path, params={"follow": str(follow).lower()}, timeout=timeout
        ) as resp:
            if resp.status_code >= 400:
                resp.read()
                try:
                    detail = resp.json().get("detail", resp.text)
                except ValueError:
                    detail = resp.text
                raise MasterError(f"GET {path}: {resp.status_code}: {detail}")
            for line in resp.iter_lines():
                sys.stdout.write(line + "\n")
                sys.stdout.flush()
    except httpx.TransportError as err:
        raise MasterError(f"cannot reach the master at {client.base_url}: {err}") from None


@app.command("list")
def list_builds(
    json_out: JsonFlag = False,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Builds, newest first: state, stage, progress, image and times."""
    with make_client(master, token, data_dir) as client:
        builds = call(client, "GET", "/api/v1/builds")
    if json_out:
        print_json(builds)
        return
    table = Table("id", "state", "stage", "done", "image", "created", "finished")
    for b in builds:
        style = STYLE.get(b["state"], "dim")
        table.add_row(  # strings from the master are data, not rich markup
            escape(b["id"]),
            f"[{style}]{b['state']}[/]",
            escape(b["stage"] or "-"),
            f"{b['progress']:.0%}",
            escape(b["image_id"] or "-"),
            _when(b["created"]),
            _when(b["finished"]),
        )
    Console().print(table)
    if not builds:
        typer.echo("no builds")


@app.command("show")
def show(
    build_id: BuildId,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print one build (JSON), with the full effective spec it builds."""
    with make_client(master, token, data_dir) as client:
        print_json(call(client, "GET", f"/api/v1/builds/{build_id}"))


@app.command("log")
def log(
    build_id: BuildId,
    follow: Follow = False,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print a build's log; with --follow, live until the build ends."""
    with make_client(master, token, data_dir) as client:
        stream_log(client, build_id, follow)


def _overrides(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    data = read_yaml(path)
    if data is not None and not isinstance(data, dict):
        raise SpecError(f"{path} must be a mapping of spec keys to values")
    return data


@app.command("start")
def start(
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
    json_out: JsonFlag = False,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Queue a build of the master's settings; prints its id (or follows its log)."""
    body = {"overrides": _overrides(overrides), "activate": activate, "force": force}
    with make_client(master, token, data_dir) as client:
        started = call(client, "POST", "/api/v1/builds", json=body)
        if json_out:
            print_json(started)
        else:
            typer.echo(started["id"])
        if not follow:
            return
        stream_log(client, started["id"], follow=True)
        ended = call(client, "GET", f"/api/v1/builds/{started['id']}")
    summary = {k: ended[k] for k in ("state", "image_id", "error")}
    typer.echo(json.dumps(summary), err=True)
    if ended["state"] != "succeeded":
        raise typer.Exit(1)


@app.command("cancel")
def cancel(
    build_id: BuildId,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Cancel a queued or running build (its commands are stopped, its tree removed)."""
    with make_client(master, token, data_dir) as client:
        b = call(client, "DELETE", f"/api/v1/builds/{build_id}")
    typer.echo(f"{build_id}: {'cancelled' if b['state'] == 'cancelled' else 'cancelling'}")
