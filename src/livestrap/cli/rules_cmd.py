"""`livestrap rules show|set|test`: the rules a running master runs on new nodes and on
each reinspect (docs/rules.md), and their dry run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from livestrap.cli.output import DocumentOutput, JsonAlias, chosen_format, print_document
from livestrap.cli.remote import remote_app, remote_of
from livestrap.errors import OptionError
from livestrap.yamlfile import read_yaml

app = remote_app("Show, change and dry-run the node rules of a running master.")
RulesFile = Annotated[Path, typer.Argument(help="Rules (YAML or JSON): a list, or {rules: [...]}.")]


def rules_document(path: Path) -> dict[str, Any]:
    """The file's rules as the API takes them: {"rules": [...]} (the master checks them)."""
    data = read_yaml(path)
    if isinstance(data, list):
        return {"rules": data}
    if isinstance(data, dict) and isinstance(data.get("rules"), list):
        return {"rules": data["rules"]}
    if data is None:
        return {"rules": []}
    raise OptionError(f"{path}: expected a list of rules, or a mapping with `rules:`")


@app.command("show")
def show(ctx: typer.Context, output: DocumentOutput = None, json_alias: JsonAlias = False) -> None:
    """Print the stored rules, in the order they run (YAML, or -o json)."""
    fmt = chosen_format(output, "yaml", json_alias=json_alias)
    print_document(fmt, remote_of(ctx).call("GET", "/api/v1/rules"))


@app.command("set")
def set_(ctx: typer.Context, rules_file: RulesFile) -> None:
    """Replace the master's rules with RULES_FILE (a refused expression: nothing is stored)."""
    body = rules_document(rules_file)
    remote_of(ctx).call("PUT", "/api/v1/rules", json=body)
    typer.echo(f"{len(body['rules'])} rules saved from {rules_file}")


def outcome_text(outcome: dict[str, Any]) -> str:
    """One rule's effect on one node, as a few words."""
    parts = []
    if outcome.get("name"):
        parts.append(f"name {outcome['name']}")
    if outcome.get("conflict"):
        parts.append(f"CONFLICT: {outcome['conflict']} is taken")
    if outcome.get("tags_added"):
        parts.append("tags +" + ",+".join(outcome["tags_added"]))
    if outcome.get("action"):
        parts.append(f"queue {outcome['action']}")
    parts += [f"ERROR {e}" for e in outcome.get("errors") or []]
    return "; ".join(parts) or "matched, nothing to do"


@app.command("test")
def test(
    ctx: typer.Context,
    rules_file: Annotated[
        Path | None, typer.Argument(help="Rules to try instead of the stored ones.")
    ] = None,
    reinspect: Annotated[
        bool, typer.Option("--reinspect", help="As on a reinspect (default: as on registration).")
    ] = False,
    output: DocumentOutput = None,
    json_alias: JsonAlias = False,
) -> None:
    """What the rules would do to every known node; nothing changes on the master."""
    body: dict[str, Any] = {"trigger": "reinspect" if reinspect else "register"}
    if rules_file is not None:
        body["rules"] = rules_document(rules_file)["rules"]
    result = remote_of(ctx).call("POST", "/api/v1/rules/dry-run", json=body)
    if output is not None or json_alias:
        print_document(chosen_format(output, "yaml", json_alias=json_alias), result)
        return
    for report in result.get("reports", []):
        for outcome in report.get("outcomes", []):
            typer.echo(f"{report['node_id']}  {outcome['rule']}: {outcome_text(outcome)}")
    more = " (list truncated)" if result.get("truncated") else ""
    typer.echo(
        f"{result['nodes']} nodes: {result['matched']} matched, {result['renamed']} named, "
        f"{result['tagged']} tagged, {result['actions']} actions, {result['conflicts']} "
        f"conflicts, {result['errors']} with errors ({result['took_s']} s){more}",
        err=True,
    )
