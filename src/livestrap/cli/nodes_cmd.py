"""`livestrap nodes list|show|timeline|delete`: the inventory of a running master."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from livestrap.cli import tables
from livestrap.cli.describe import describe_node
from livestrap.cli.humanize import local_time
from livestrap.cli.nodes_set_cmd import set_node
from livestrap.cli.options import id_argument
from livestrap.cli.output import (
    EventsOutput,
    JsonAlias,
    ListOutput,
    Quiet,
    ShowOutput,
    chosen_format,
    print_rows,
)
from livestrap.cli.remote import list_remote, remote_app, remote_of, show_remote

app = remote_app("Nodes known to a running master.")
NodeId = Annotated[str, id_argument("nodes")]


class Status(StrEnum):
    online = "online"
    offline = "offline"


@app.command("list")
def list_nodes(
    ctx: typer.Context,
    status: Annotated[Status | None, typer.Option(help="Only online or offline nodes.")] = None,
    mac: Annotated[str | None, typer.Option(help="Only the node owning this MAC.")] = None,
    tag: Annotated[str | None, typer.Option(help="Only nodes with this tag.")] = None,
    name: Annotated[str | None, typer.Option(help="Only the node of this name.")] = None,
    output: ListOutput = None,
    quiet: Quiet = False,
    json_alias: JsonAlias = False,
) -> None:
    """Every node: status, model, boot MAC, IP and when it was last heard from."""
    fmt = chosen_format(output, "table", json_alias=json_alias, quiet=quiet)
    given = (("status", status), ("mac", mac), ("tag", tag), ("name", name))
    params = {k: str(v) for k, v in given if v is not None}
    list_remote(ctx, "/api/v1/nodes", tables.NODES, fmt, params)


@app.command("show")
def show(ctx: typer.Context, node_id: NodeId, output: ShowOutput = None) -> None:
    """One node: identity, status, CPU, memory, disks, NICs, failures (-o json: all facts)."""
    show_remote(ctx, f"/api/v1/nodes/{node_id}", output, describe_node)


@app.command("timeline")
def timeline(
    ctx: typer.Context, node_id: NodeId, output: EventsOutput = None, json_alias: JsonAlias = False
) -> None:
    """The node's boot events (iPXE script, kernel, initrd, squashfs, report), oldest first."""
    fmt = chosen_format(output, "table", json_alias=json_alias)
    events = remote_of(ctx).call_pages(f"/api/v1/nodes/{node_id}/timeline")
    if fmt in ("table", "wide") and events:
        typer.echo(f"first event {local_time(events[0]['at'])}", err=True)  # not a row
    print_rows(fmt, tables.timeline_rows(events), tables.TIMELINE, data=events)


@app.command("delete")
def delete(ctx: typer.Context, node_id: NodeId) -> None:
    """Forget a node (it registers again on its next report)."""
    remote = remote_of(ctx)
    full_id = remote.call("GET", f"/api/v1/nodes/{node_id}")["id"]
    remote.call("DELETE", f"/api/v1/nodes/{full_id}")
    typer.echo(f"deleted node {full_id}")


app.command("set")(set_node)  # in its own module (cli.nodes_set_cmd), to keep this one small
