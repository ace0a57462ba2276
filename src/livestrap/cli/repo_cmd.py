"""`livestrap agent build-deb` and `livestrap repo publish`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from livestrap.cli import tables
from livestrap.cli.options import DEFAULT_DATA_DIR, WritableDataDir
from livestrap.cli.output import ListFormat, chosen_format, output_option, print_rows
from livestrap.packaging.agent_deb import build_agent_deb, check_version
from livestrap.packaging.master_repo import MasterRepo

agent_app = typer.Typer(help="The discovery agent's package.", no_args_is_help=True)
repo_app = typer.Typer(help="The master's signed APT repository.", no_args_is_help=True)
PackagesOutput = Annotated[
    ListFormat | None,
    output_option(
        ("table", "wide", "json", "yaml", "value"), value="the package names, one per line"
    ),
]
PackageNames = Annotated[
    bool, typer.Option("--quiet", "-q", help="Only the package names (same as -o value).")
]


def _log(line: str) -> None:
    if line.startswith("$ "):
        typer.echo(line, err=True)


@agent_app.command("build-deb")
def build_deb(
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where to write the .deb.")] = Path(
        "."
    ),
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="Package version (default: <__version__>+src<hash of the sources>)."
        ),
    ] = None,
) -> None:
    """Build livestrap-agent_<version>_all.deb with dpkg-deb."""
    if version is not None:
        try:
            check_version(version)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--version") from None
    deb = build_agent_deb(out_dir, log=_log, version=version)
    typer.echo(str(deb))


@repo_app.command("publish")
def publish(
    debs: Annotated[
        list[Path] | None, typer.Argument(help=".deb files (default: the agent, built now)")
    ] = None,
    data_dir: WritableDataDir = DEFAULT_DATA_DIR,
    output: PackagesOutput = None,
    quiet: PackageNames = False,
) -> None:
    """Add packages to the master's repository, re-index it and sign it; prints what it
    published (-q: the package names)."""
    fmt = chosen_format(output, "table", quiet=quiet)
    repo = MasterRepo(data_dir)
    published = repo.publish(debs or None, log=_log)
    rows = [{"package": p.package, "version": p.version, "file": p.file.name} for p in published]
    typer.echo(f"repository: {repo.root} (key: {repo.key_file})", err=True)
    print_rows(fmt, rows, tables.PUBLISHED)
