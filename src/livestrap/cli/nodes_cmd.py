"""`livestrap nodes list|show|timeline|delete`: the inventory of a running master."""

from __future__ import annotations

import time
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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

app = typer.Typer(help="Nodes known to a running master.", no_args_is_help=True)
NodeId = Annotated[str, typer.Argument(help="Node id (see `livestrap nodes list`).")]


def _ago(iso: str, now: float | None = None) -> str:
    """'12s ago', '5m ago', '3h ago', '2d ago': what an operator scans a list for."""
    at = datetime.fromisoformat(iso)
    seconds = max(0, int((time.time() if now is None else now) - at.timestamp()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


class Status(StrEnum):
    online = "online"
    offline = "offline"


def _model(node: dict[str, Any]) -> str:
    return " ".join(str(node[k]) for k in ("vendor", "product") if node.get(k)) or "-"


@app.command("list")
def list_nodes(
    status: Annotated[Status | None, typer.Option(help="Only online or offline nodes.")] = None,
    mac: Annotated[str | None, typer.Option(help="Only the node owning this MAC.")] = None,
    json_out: JsonFlag = False,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Every node: status, model, serial, boot MAC, IP and when it was last heard from."""
    params = {k: str(v) for k, v in (("status", status), ("mac", mac)) if v is not None}
    with make_client(master, token, data_dir) as client:
        nodes = call(client, "GET", "/api/v1/nodes", params=params)
    if json_out:
        print_json(nodes)
        return
    if not nodes:
        typer.echo("no nodes")
        return
    table = Table(box=None)
    table.add_column("id", no_wrap=True, min_width=max(len(n["id"]) for n in nodes))  # copied
    for header in ("status", "vendor/product", "serial", "boot MAC", "IP", "last seen"):
        table.add_column(header, no_wrap=header != "vendor/product")
    for n in nodes:
        style = "green" if n["status"] == "online" else "red"
        cells = [_model(n), n.get("serial") or "-", n.get("boot_mac") or "-", n.get("last_ip")]
        table.add_row(  # node-reported strings are data, not rich markup
            escape(n["id"]),
            f"[{style}]{n['status']}[/]",
            *(escape(c or "-") for c in cells),
            _ago(n["last_seen_at"]),
        )
    Console().print(table)


@app.command("show")
def show(
    node_id: NodeId,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Print one node as JSON: identity, facts, failures, MACs, status."""
    with make_client(master, token, data_dir) as client:
        print_json(call(client, "GET", f"/api/v1/nodes/{node_id}"))


def timeline_lines(events: list[dict[str, Any]]) -> list[str]:
    """One line per event, timed from the first: '+12.3s  kernel  10.0.2.15  aa:bb:..'."""
    if not events:
        return []
    start = datetime.fromisoformat(events[0]["at"]).timestamp()
    lines = []
    for e in events:
        offset = datetime.fromisoformat(e["at"]).timestamp() - start
        extra = " ".join(f"{k}={v}" for k, v in (e.get("detail") or {}).items())
        cols = [f"+{offset:.1f}s", e["kind"], e.get("ip") or "-", e.get("mac") or "-"]
        cols += [e.get("image_id") or "-", extra]
        lines.append(f"{cols[0]:>9}  {cols[1]:<17} " + "  ".join(cols[2:]).rstrip())
    return lines


@app.command("timeline")
def timeline(
    node_id: NodeId,
    json_out: JsonFlag = False,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """The node's boot events (iPXE script, kernel, initrd, squashfs, report), oldest first."""
    with make_client(master, token, data_dir) as client:
        events = call(client, "GET", f"/api/v1/nodes/{node_id}/timeline")
    if json_out:
        print_json(events)
        return
    if events:
        first = datetime.fromisoformat(events[0]["at"]).astimezone()
        typer.echo(f"first event {first:%Y-%m-%d %H:%M:%S}")
    for line in timeline_lines(events):
        typer.echo(line)
    if not events:
        typer.echo("no events")


@app.command("delete")
def delete(
    node_id: NodeId,
    master: MasterUrl = DEFAULT_URL,
    token: Token = None,
    data_dir: ClientDataDir = DEFAULT_DATA_DIR,
) -> None:
    """Forget a node (it registers again on its next report)."""
    with make_client(master, token, data_dir) as client:
        call(client, "DELETE", f"/api/v1/nodes/{node_id}")
    typer.echo(f"deleted node {node_id}")
