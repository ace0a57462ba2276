"""`livestrap nodes install|reinspect|reboot|poweroff|actions`: node actions, queued on the
master and run by each node's agent at its next heartbeat. Registered on the `nodes`
group (cli.nodes_cmd) so that module stays small."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from livestrap.cli import tables
from livestrap.cli.nodes_cmd import NodeId
from livestrap.cli.nodes_cmd import app as app  # the nodes group, these commands added
from livestrap.cli.options import id_ref
from livestrap.cli.output import ShortListOutput, chosen_format, print_rows
from livestrap.cli.remote import remote_of
from livestrap.errors import OptionError
from livestrap.master.schemas.actions import package_words

All = Annotated[bool, typer.Option("--all", help="Every node the master knows.")]
Tag = Annotated[str | None, typer.Option("--tag", help="Every node with this tag.")]
Target = Annotated[
    str | None,
    typer.Argument(
        help="Node id or a unique prefix of one (or --all, or --tag T).", show_default=False
    ),
]


def parse_packages(words: list[str]) -> list[dict[str, str | None]]:
    """PKG or PKG=VERSION -> the install action's packages (the master checks them)."""
    try:
        return package_words(words)
    except ValueError as err:
        raise OptionError(str(err)) from None


def _selector(node: str | None, every: bool, tag: str | None) -> dict[str, Any] | None:
    """None: one node (`node`); else the bulk selector. Exactly one way must be given."""
    given = sum((node is not None, every, tag is not None))
    if given != 1:
        raise OptionError("give one of: NODE, --all, --tag T")
    if node is not None:
        id_ref(node)
        return None
    return {"all": True} if every else {"tag": tag}


def queue(ctx: typer.Context, kind: str, args: dict[str, Any], node: str | None, every: bool,
          tag: str | None, output: str | None) -> None:  # fmt: skip
    """POST the action for one node or a selector's nodes; print what was queued."""
    selector = _selector(node, every, tag)
    remote = remote_of(ctx)
    body: dict[str, Any] = {"kind": kind, "args": args}
    if selector is None:
        queued = [remote.call("POST", f"/api/v1/nodes/{node}/actions", json=body)]
    else:
        queued = remote.call("POST", "/api/v1/actions", json={**body, "selector": selector})
        queued = queued["queued"]
    fmt = chosen_format(output, "table")
    if fmt == "table":
        typer.echo(
            f"queued {kind} for {len(queued)} node(s); each runs it at its next "
            "heartbeat (livestrap nodes actions NODE)",
            err=True,
        )
    print_rows(fmt, queued, tables.ACTIONS)


@app.command("install")
def install(
    ctx: typer.Context,
    words: Annotated[
        list[str],
        typer.Argument(
            metavar="[NODE] PKG[=VERSION]...",
            help="The node (unless --all or --tag), then the packages.",
        ),
    ],
    every: All = False,
    tag: Tag = None,
    output: ShortListOutput = None,
) -> None:
    """Install packages from the master's repository on running nodes (no rebuild)."""
    node = None if every or tag is not None else words[0]
    packages = words if node is None else words[1:]
    if not packages:
        raise OptionError("name at least one package: PKG or PKG=VERSION")
    queue(ctx, "install", {"packages": parse_packages(packages)}, node, every, tag, output)


@app.command("reinspect")
def reinspect(ctx: typer.Context, node: Target = None, every: All = False, tag: Tag = None,
              output: ShortListOutput = None) -> None:  # fmt: skip
    """Collect and send the node's facts again now (no reboot)."""
    queue(ctx, "reinspect", {}, node, every, tag, output)


@app.command("reboot")
def reboot(ctx: typer.Context, node: Target = None, every: All = False, tag: Tag = None,
           output: ShortListOutput = None) -> None:  # fmt: skip
    """Reboot the node (it boots the active image again and stays the same node)."""
    queue(ctx, "reboot", {}, node, every, tag, output)


@app.command("poweroff")
def poweroff(ctx: typer.Context, node: Target = None, every: All = False, tag: Tag = None,
             output: ShortListOutput = None) -> None:  # fmt: skip
    """Power the node off."""
    queue(ctx, "poweroff", {}, node, every, tag, output)


@app.command("actions")
def actions(ctx: typer.Context, node_id: NodeId, output: ShortListOutput = None) -> None:
    """The node's actions, newest first: state, exit code, time taken (-o json: output)."""
    rows = remote_of(ctx).call("GET", f"/api/v1/nodes/{node_id}/actions")
    print_rows(chosen_format(output, "table"), rows, tables.ACTIONS)
