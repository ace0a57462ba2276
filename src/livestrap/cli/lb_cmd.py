"""`livestrap netboot lb-config` (HAProxy in front of several masters) and `rack-config`
(an nginx cache in each rack): docs/scaling.md."""

from __future__ import annotations

from typing import Annotated

import typer

from livestrap.errors import SpecError
from livestrap.master.config_load import load_settings
from livestrap.netboot import haproxy, rackcache


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


def rack_config(
    masters: Annotated[
        list[str],
        typer.Option(
            "--master", help="A master or the load balancer as http://HOST:PORT (repeatable)."
        ),
    ],
    listen: Annotated[str, typer.Option(help="nginx's listen: PORT or ADDRESS:PORT.")] = "80",
    server_name: Annotated[str, typer.Option(help="nginx's server_name.")] = "_",
    cache_dir: Annotated[
        str, typer.Option("--cache-dir", help="Where nginx keeps the cached files.")
    ] = rackcache.RackOptions.cache_dir,
    max_size: Annotated[
        str, typer.Option("--max-size", help="The cache's size at most (nginx size: 20g).")
    ] = rackcache.RackOptions.max_size,
    slice_size: Annotated[
        str, typer.Option("--slice", help="What one upstream range fetch takes (16m).")
    ] = rackcache.RackOptions.slice_size,
    node_rate: Annotated[
        int,
        typer.Option(
            "--node-rate",
            help="Image file requests per second per node address, 10 s of it at once "
            "(0: no limit); beyond it, 429.",
        ),
    ] = rackcache.RackOptions.node_rate,
) -> None:
    """Print an nginx site for a rack cache: image files cached on disk (one upstream
    fetch per file however many nodes boot), the API and boot scripts passed through, and
    each node's download still on its boot timeline."""
    opts = rackcache.RackOptions(
        masters=tuple(masters), listen=listen, server_name=server_name, cache_dir=cache_dir,
        max_size=max_size, slice_size=slice_size, node_rate=node_rate,
        max_body_bytes=load_settings().max_body_bytes,
    )  # fmt: skip
    problems = rackcache.check_options(opts)
    if problems:
        raise SpecError("rack-config: " + "; ".join(problems))
    typer.echo(rackcache.render_rack_config(opts), nl=False)
