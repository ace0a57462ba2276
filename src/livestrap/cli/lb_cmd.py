"""`livestrap netboot lb-config`: HAProxy in front of several masters (docs/scaling.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from livestrap.errors import SpecError
from livestrap.netboot import haproxy


def lb_config(
    masters: Annotated[
        list[str],
        typer.Option("--master", help="A master as http://HOST:PORT (once per master)."),
    ],
    listen: Annotated[
        str, typer.Option(help="HAProxy's bind: [ADDRESS]:PORT the nodes and clients use.")
    ] = ":80",
    check_interval: Annotated[
        int, typer.Option("--check-interval", help="Seconds between /healthz checks.")
    ] = 2,
    maxconn: Annotated[
        int,
        typer.Option(
            help="Connections in flight at most (HAProxy needs two file descriptors "
            "each: raise LimitNOFILE to match)."
        ),
    ] = haproxy.BalancerOptions.maxconn,
    stats_listen: Annotated[
        str | None,
        typer.Option("--stats-listen", help="ADDRESS:PORT for HAProxy's status page (none)."),
    ] = None,
) -> None:
    """Print a haproxy.cfg that spreads nodes and clients over the masters, health-checks
    each on /healthz and stops sending to one that fails."""
    opts = haproxy.BalancerOptions(
        masters=tuple(masters), listen=listen, check_interval_s=check_interval,
        maxconn=maxconn, stats_listen=stats_listen,
    )  # fmt: skip
    problems = haproxy.check_options(opts)
    if problems:
        raise SpecError("lb-config: " + "; ".join(problems))
    typer.echo(haproxy.render_haproxy_config(opts), nl=False)
