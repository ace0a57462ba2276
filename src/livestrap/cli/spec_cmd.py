"""`livestrap spec show|check`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from livestrap.builder.plan import BuildPlan
from livestrap.cli.options import DEFAULT_DATA_DIR
from livestrap.cli.output import DocumentOutput, chosen_format, print_json
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec, ResolvedSpec, load_spec, spec_to_yaml, spec_warnings
from livestrap.specpaths import PathRules

app = typer.Typer(help="Show and check build specs.", no_args_is_help=True)

SpecArg = Annotated[
    Path | None, typer.Argument(help="Build spec (YAML); the default spec when left out.")
]


def effective_spec(
    path: Path | None, data_dir: Path | None = None, plan: BuildPlan | None = None
) -> ResolvedSpec:
    """Load (or take the default), fill every default, and check what needs the whole spec;
    with a build `plan`, also the master's repository when the spec wants the agent.

    Paths into the data dir's secrets (tokens, keys/, images/, tmp/, the database) are
    refused; without `data_dir`, those of LIVESTRAP_DATA_DIR or the default one."""
    if data_dir is None:
        data_dir = Path(os.environ.get("LIVESTRAP_DATA_DIR") or DEFAULT_DATA_DIR)
    rules = PathRules(data_dir=data_dir)
    loaded = load_spec(path, rules) if path else BuildSpec()
    spec = plan.resolve(loaded) if plan else resolve(loaded)
    for warning in spec_warnings(spec):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW, err=True)
    return spec


@app.command("show")
def show(path: SpecArg = None, output: DocumentOutput = None) -> None:
    """Print the effective spec, every default filled in (YAML, or -o json)."""
    spec = effective_spec(path)
    if chosen_format(output, "yaml") == "json":
        print_json(spec.model_dump(mode="json"))
    else:
        typer.echo(spec_to_yaml(spec), nl=False)


@app.command("check")
def check(path: Annotated[Path, typer.Argument(help="Build spec (YAML).")]) -> None:
    """Validate a spec without building anything."""
    spec = effective_spec(path)
    typer.echo(f"{path}: ok ({spec.distro} {spec.suite}, {len(spec.all_packages())} packages)")
