"""`livestrap nodes set NODE [--name N] [--tag T]... [--untag T]...`: an operator's name
and tags for a node (PATCH /api/v1/nodes/{id})."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from livestrap.cli.remote import remote_of
from livestrap.errors import OptionError


def set_node(
    ctx: typer.Context,
    node_id: Annotated[str, typer.Argument(help="A node id, a unique id prefix, or its name.")],
    name: Annotated[
        str | None, typer.Option("--name", help='Its name, a DNS label ("" clears it).')
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Add this tag (repeatable).")
    ] = None,
    untag: Annotated[
        list[str] | None, typer.Option("--untag", help="Remove this tag (repeatable).")
    ] = None,
) -> None:
    """Name a node, or add and remove its tags (the others stay)."""
    if name is None and not tag and not untag:
        raise OptionError("nothing to set: give --name, --tag or --untag")
    remote = remote_of(ctx)
    node = remote.call("GET", f"/api/v1/nodes/{node_id}")
    body: dict[str, Any] = {}
    if name is not None:
        body["name"] = name or None
    if tag or untag:
        gone = set(untag or [])
        body["tags"] = [t for t in [*node.get("tags", []), *(tag or [])] if t not in gone]
    answer = remote.call("PATCH", f"/api/v1/nodes/{node['id']}", json=body)
    tags = ", ".join(answer.get("tags", [])) or "no tags"
    typer.echo(f"node {answer['id']}: name {answer.get('name') or '-'}; {tags}")
