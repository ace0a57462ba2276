"""The `livestrap` command line: parse, call, print. No logic lives here."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

import livestrap
from livestrap.cli import (
    actions_cmd,
    backup_cmd,
    build_cmd,
    builder_cmd,
    builds_cmd,
    config_cmd,
    images_cmd,
    lb_cmd,
    nodes_cmd,
    repo_cmd,
    rules_cmd,
    serve_cmd,
    settings_cmd,
    spec_cmd,
    tftp_cmd,
    token_cmd,
    vm_cmd,
    webhooks_cmd,
)
from livestrap.cli.output import printable
from livestrap.errors import LivestrapError

assert actions_cmd.app is nodes_cmd.app  # its commands are the nodes group's

app = typer.Typer(
    name="livestrap",
    help="Build, store and serve live discovery images.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(spec_cmd.app, name="spec")
app.add_typer(images_cmd.app, name="images")
app.add_typer(repo_cmd.agent_app, name="agent")
app.add_typer(repo_cmd.repo_app, name="repo")
app.add_typer(nodes_cmd.app, name="nodes")  # with actions_cmd's commands
app.add_typer(settings_cmd.app, name="settings")
app.add_typer(rules_cmd.app, name="rules")
app.add_typer(builds_cmd.app, name="builds")
app.add_typer(config_cmd.app, name="config")
app.add_typer(vm_cmd.vm_app, name="vm")
vm_cmd.netboot_app.command("tftp-tree")(tftp_cmd.tftp_tree)
vm_cmd.netboot_app.command("lb-config")(lb_cmd.lb_config)
vm_cmd.netboot_app.command("rack-config")(lb_cmd.rack_config)
app.add_typer(vm_cmd.netboot_app, name="netboot")
app.add_typer(webhooks_cmd.app, name="webhooks")
app.add_typer(token_cmd.app, name="token")
app.command("build")(build_cmd.build)
app.command("serve")(serve_cmd.serve)
app.command("builder")(builder_cmd.builder)
app.command("backup")(backup_cmd.backup)
app.command("restore")(backup_cmd.restore)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"livestrap {livestrap.__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Build, store and serve live discovery images."""


def _print_error(text: str) -> None:
    # The message is plain text (paths, YAML snippets), never markup; soft_wrap keeps
    # one line one line whatever the terminal's width.
    safe = "\n".join(printable(line) for line in text.split("\n"))
    message = Text.assemble(("error:", "bold red"), " ", safe)
    Console(stderr=True).print(message, highlight=False, soft_wrap=True)


def main() -> None:
    try:
        app()
    except LivestrapError as err:
        _print_error(str(err))
        sys.exit(err.exit_code)
    except OSError as err:  # a file or socket the machine refused: its own words, one line
        if os.environ.get("LIVESTRAP_DEBUG"):
            raise
        where = f"{err.filename}: " if err.filename else ""
        _print_error(f"{where}{err.strerror or err} (LIVESTRAP_DEBUG=1 shows where it happened)")
        sys.exit(1)
