"""Talking to a running master from the CLI: URL and admin token from flags, env or data dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import httpx
import typer

from livestrap.cli.options import DEFAULT_DATA_DIR
from livestrap.datadir import DataDir
from livestrap.errors import LivestrapError, OptionError

DEFAULT_URL = "http://127.0.0.1:8080"
MAX_PAGES = 100_000  # a master that never stops handing out cursors is a bug, not a list

MasterUrl = Annotated[str, typer.Option("--master", envvar="LIVESTRAP_MASTER", help="Master URL.")]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="LIVESTRAP_TOKEN",
        help=r"Admin token \[default: read from DATA_DIR/admin.token].",
    ),
]
ClientDataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="LIVESTRAP_DATA_DIR",
        help="Where to find admin.token (and, for vm, the nodes' files: DATA_DIR/vms).",
    ),
]


class MasterError(LivestrapError):
    """The master refused a request or could not be reached."""


def check_master_url(master: str) -> str:
    """--master is http(s)://HOST[:PORT]; anything else is a usage error, said as one."""
    hint = "expected http://HOST:PORT, e.g. http://127.0.0.1:8080 (--master or LIVESTRAP_MASTER)"
    try:
        parts = urlsplit(master)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        raise OptionError(f"--master {master!r}: {hint}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OptionError(f"--master {master!r}: {hint}")
    return master


def check_token(token: str, source: str) -> str:
    """A token goes into an HTTP header: printable ASCII only."""
    if not token or not (token.isascii() and token.isprintable()):
        raise OptionError(f"the admin token from {source} is not printable ASCII; check it")
    return token


def make_client(master: str, token: str | None, data_dir: Path = DEFAULT_DATA_DIR) -> httpx.Client:
    check_master_url(master)
    if token is None:
        token_file = DataDir(data_dir).admin_token
        try:
            token = check_token(token_file.read_text().strip(), str(token_file))
        except OSError:
            raise MasterError(
                f"no admin token: pass --token, set LIVESTRAP_TOKEN, or make {token_file} readable"
            ) from None
    else:
        check_token(token, "--token or LIVESTRAP_TOKEN")
    return httpx.Client(
        base_url=master.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


def raise_for_refusal(resp: httpx.Response, method: str, path: str) -> None:
    """A 4xx/5xx answer becomes a MasterError carrying the master's `detail` as text."""
    if resp.status_code < 400:
        return
    try:
        detail = resp.json().get("detail", resp.text)
    except (ValueError, AttributeError):
        detail = resp.text
    if not isinstance(detail, str):
        detail = json.dumps(detail)
    raise MasterError(f"{method} {path}: {resp.status_code}: {detail}")


@contextmanager
def reaching(client: httpx.Client) -> Iterator[None]:
    """A connection problem inside the block becomes a MasterError naming the master."""
    try:
        yield
    except httpx.TransportError as err:
        raise MasterError(f"cannot reach the master at {client.base_url}: {err}") from None


def send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request, answered: a refusal or a connection problem becomes a MasterError."""
    with reaching(client):
        resp = client.request(method, path, **kwargs)
    raise_for_refusal(resp, method, path)
    return resp


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> Any:
    """One request's answer: the JSON it carries, else its text (see `send`)."""
    resp = send(client, method, path, **kwargs)
    if resp.headers.get("content-type", "").startswith("application/json"):
        return resp.json()
    return resp.text


def call_pages(client: httpx.Client, path: str, params: dict[str, str] | None = None) -> list[Any]:
    """Every row of a paged list (GET /api/v1/nodes, timelines): the pages are followed
    through the master's X-Next-Cursor header until there is none."""
    rows: list[Any] = []
    query = dict(params or {})
    for _ in range(MAX_PAGES):
        resp = send(client, "GET", path, params=query)
        page = resp.json()
        if not isinstance(page, list):
            raise MasterError(f"GET {path}: expected a JSON list, got {type(page).__name__}")
        rows += page
        next_cursor = resp.headers.get("x-next-cursor")
        if not next_cursor or not page:
            return rows
        query["after"] = next_cursor
    raise MasterError(f"GET {path}: more than {MAX_PAGES} pages; giving up")
