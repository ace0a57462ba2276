"""`livestrap webhooks add|list|rm|deliveries`: receivers of a running master's events."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from livestrap.cli.humanize import ago
from livestrap.cli.options import id_argument
from livestrap.cli.output import (
    Column,
    ListOutput,
    Quiet,
    ShowOutput,
    TableView,
    chosen_format,
    field_of,
    print_one,
    print_rows,
)
from livestrap.cli.remote import list_remote, remote_app, remote_of
from livestrap.errors import OptionError
from livestrap.master.webhooks.events import EVENT_TYPES

app = remote_app("Webhooks: where a running master sends its events (docs/webhooks.md).")
WebhookId = Annotated[str, id_argument("webhooks")]
EVENTS = EVENT_TYPES
MAX_SECRET_FILE = 4096
SECRET_FILE_HELP = (
    "Sign with the secret on this file's first line (default: the master makes one, printed once)."
)
STATE_STYLES = {"delivered": "green", "failed": "red", "pending": "yellow"}

WEBHOOKS = TableView(
    columns=(
        Column("ID", field_of("id"), is_id=True),
        Column("URL", field_of("url"), wraps=True),
        Column("EVENTS", lambda w: ",".join(w.get("events") or []) or "-", wraps=True),
        Column("ENABLED", lambda w: "yes" if w.get("enabled") else "no", wide_only=True),
        Column("AGE", lambda w: ago(w.get("created_at"))),
    ),
    empty="no webhooks",
)
DELIVERIES = TableView(
    columns=(
        Column("ID", field_of("id"), is_id=True),
        Column("EVENT", field_of("event_type")),
        Column(
            "STATE",
            field_of("state"),
            styles={"delivered": "green", "failed": "red", "pending": "yellow"},
        ),
        Column("ATTEMPTS", field_of("attempts")),
        Column("STATUS", field_of("last_status")),
        Column("ERROR", field_of("last_error"), wraps=True),
        Column("AGE", lambda d: ago(d.get("created_at"))),
        Column("EVENT ID", field_of("event_id"), wide_only=True),
    ),
    empty="no deliveries",
)


def _secret(path: Path | None) -> str | None:
    """The first line of the file (a secret never goes on a command line: `ps` shows it)."""
    if path is None:
        return None
    with path.open("rb") as f:
        raw = f.read(MAX_SECRET_FILE + 1)
    if len(raw) > MAX_SECRET_FILE:
        raise OptionError(f"{path}: a secret file holds one line, not {MAX_SECRET_FILE}+ bytes")
    lines = raw.decode("utf-8", "replace").splitlines()
    return lines[0].strip() if lines else ""


def _describe(hook: Mapping[str, Any]) -> list[str]:
    events = ", ".join(str(e) for e in hook.get("events") or [])
    lines = [f"id:      {hook['id']}", f"url:     {hook['url']}", f"events:  {events}"]
    if hook.get("secret"):
        lines.append(f"secret:  {hook['secret']}  (shown once: keep it)")
    return lines


@app.command("add")
def add(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help="The receiver: an http:// or https:// URL.")],
    event: Annotated[
        list[str],
        typer.Option("--event", "-e", help=f"An event to send (repeat): {', '.join(EVENTS)}."),
    ],
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help=SECRET_FILE_HELP),
    ] = None,
    output: ShowOutput = None,
) -> None:
    """Register a webhook; prints its id and, when the master made it, its secret."""
    unknown = sorted(set(event) - set(EVENTS))
    if unknown:
        raise OptionError(f"unknown event {', '.join(unknown)}; choose from {', '.join(EVENTS)}")
    body = {"url": url, "events": list(dict.fromkeys(event)), "secret": _secret(secret_file)}
    made = remote_of(ctx).call("POST", "/api/v1/webhooks", json=body)
    if secret_file is not None:
        made.pop("secret", None)  # the operator has it already
    print_one(chosen_format(output, "describe"), made, _describe)


@app.command("list")
def list_webhooks(ctx: typer.Context, output: ListOutput = None, quiet: Quiet = False) -> None:
    """Every webhook: its URL and events (never its secret)."""
    list_remote(ctx, "/api/v1/webhooks", WEBHOOKS, chosen_format(output, "table", quiet=quiet))


@app.command("rm")
def rm(ctx: typer.Context, webhook_id: WebhookId) -> None:
    """Delete a webhook; its pending deliveries are dropped."""
    remote_of(ctx).call("DELETE", f"/api/v1/webhooks/{webhook_id}")
    typer.echo(f"deleted webhook {webhook_id}")


@app.command("deliveries")
def deliveries(
    ctx: typer.Context,
    webhook_id: WebhookId,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    output: ListOutput = None,
    quiet: Quiet = False,
) -> None:
    """A webhook's recent deliveries: state, attempts, last status code or error."""
    fmt = chosen_format(output, "table", quiet=quiet)
    rows = remote_of(ctx).call("GET", f"/api/v1/webhooks/{webhook_id}/deliveries",
                               params={"limit": limit})  # fmt: skip
    print_rows(fmt, rows, DELIVERIES)
