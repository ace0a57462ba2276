"""The command groups that talk to a running master (nodes, settings, builds, vm).

Their client options are declared once, on the group: its callback keeps them in
`ctx.obj` as a `Remote`, whose HTTP client is made on first use (so `--help` and commands
that fail their checks open nothing). Both `livestrap nodes --master URL list` and
`livestrap nodes list --master URL` work: the group moves the client options it finds
after the command name in front of it, where click parses a group's options.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import typer
from typer.core import TyperGroup

from livestrap.cli.client import (
    DEFAULT_URL,
    ClientDataDir,
    MasterUrl,
    Token,
    call,
    call_pages,
    make_client,
)
from livestrap.cli.options import DEFAULT_DATA_DIR
from livestrap.cli.output import TableView, chosen_format, print_one, print_rows

CLIENT_OPTIONS = ("--master", "--token", "--data-dir")  # each takes a value
CLIENT_EPILOG = (
    "The client options (--master, --token, --data-dir, or LIVESTRAP_MASTER, LIVESTRAP_TOKEN, "
    "LIVESTRAP_DATA_DIR) go before or after the command name."
)
COMMAND_EPILOG = (
    "Also takes the client options --master, --token and --data-dir (livestrap {group} --help)."
)


@dataclass
class Remote:
    """Where the master is and how to authenticate; the client itself is made lazily."""

    master: str = DEFAULT_URL
    token: str | None = None
    data_dir: Path = DEFAULT_DATA_DIR
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            self._client = make_client(self.master, self.token, self.data_dir)
        return self._client

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        return call(self.client, method, path, **kwargs)

    def call_pages(self, path: str, params: dict[str, str] | None = None) -> list[Any]:
        return call_pages(self.client, path, params)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


def hoist_client_options(args: Sequence[str]) -> list[str]:
    """`list --mac M --master U` -> `--master U list --mac M`: the client options (and their
    values) first, everything else in its order. Nothing after `--` moves."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        name, has_value, _ = arg.partition("=")
        if name in CLIENT_OPTIONS and (has_value or i + 1 < len(args)):
            taken = 1 if has_value else 2
            hoisted.extend(args[i : i + taken])
            i += taken
            continue
        rest.append(arg)
        i += 1
    return hoisted + rest


class RemoteGroup(TyperGroup):
    """A group whose client options may also follow the command name (see the module doc)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for command in self.commands.values():
            command.epilog = command.epilog or COMMAND_EPILOG.format(group=self.name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's click Context
        return super().parse_args(ctx, hoist_client_options(args))


def connect(ctx: typer.Context, master: MasterUrl = DEFAULT_URL, token: Token = None,
            data_dir: ClientDataDir = DEFAULT_DATA_DIR) -> None:  # fmt: skip
    remote = Remote(master, token, data_dir)
    ctx.obj = remote
    ctx.call_on_close(remote.close)


def remote_app(help: str) -> typer.Typer:
    """A command group talking to a master: the client options once, on the group."""
    return typer.Typer(
        help=help, epilog=CLIENT_EPILOG, no_args_is_help=True, cls=RemoteGroup, callback=connect
    )


def remote_of(ctx: typer.Context) -> Remote:
    """The Remote the group's callback made."""
    obj = ctx.find_object(Remote)
    if obj is None:
        raise RuntimeError(f"{ctx.command_path}: not in a group made by remote_app")
    return obj


def list_remote(
    ctx: typer.Context, path: str, view: TableView, fmt: str, params: dict[str, str] | None = None
) -> None:
    """`GROUP list`: every row of a list on the master (all its pages), as `fmt` says."""
    print_rows(fmt, remote_of(ctx).call_pages(path, params), view)


def show_remote(
    ctx: typer.Context,
    path: str,
    output: str | None,
    describe: Callable[[Mapping[str, Any]], list[str]],
) -> None:
    """`GROUP show ID`: one thing on the master, described (or -o json|yaml|value)."""
    print_one(chosen_format(output, "describe"), remote_of(ctx).call("GET", path), describe)
