"""HAProxy in front of several masters on one PostgreSQL (docs/scaling.md).

Masters are stateless, so any of them can take any request: the balancer picks the one
with the fewest connections (downloads are long), checks each master's `/healthz` every
few seconds and stops sending to one that fails, and sends a request whose connection
could not be made to another master. A request already sent is never sent again: a
report or an action result the dead master took may have been applied; the agent's own
retry (with backoff) covers it, and the masters make that retry safe (exactly-once
registration, compare-and-set action states).

The node's address goes on in X-Forwarded-For: give the balancer's address to each
master as `--trusted-proxy` (setting `trusted_proxies`), or every node is the balancer.
Pure renderer: `render_haproxy_config` returns the text; the CLI prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

_LISTEN_RE = re.compile(r"^(?:(?:\d{1,3}\.){3}\d{1,3}|\[[0-9a-fA-F:.]+\]|\*)?:?\d{1,5}\Z")
_HOST_RE = re.compile(r"^[A-Za-z0-9.-]+\Z|^\[[0-9a-fA-F:.]+\]\Z")
MAX_MASTERS = 64


@dataclass(frozen=True)
class BalancerOptions:
    masters: tuple[str, ...]  # http://HOST:PORT of each master
    listen: str = ":80"  # HAProxy `bind`: [ADDRESS]:PORT
    check_interval_s: int = 2  # /healthz every this often; down after 2 failures, up after 2
    download_timeout_s: int = 3600  # a squashfs over a slow link, a streamed build log
    maxconn: int = 20_000  # in flight across all masters (a boot storm of a big fleet)
    stats_listen: str | None = None  # e.g. 127.0.0.1:8404: HAProxy's own status page


def master_address(url: str) -> tuple[str, int] | None:
    """(host, port) of an http://HOST[:PORT] master URL with no path; None if not one."""
    parts = urlsplit(url)
    try:
        port = parts.port or 80
    except ValueError:
        return None
    host = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
    if parts.scheme != "http" or not host or parts.path not in ("", "/") or parts.query:
        return None
    if "@" in host or not _HOST_RE.match(host):
        return None
    return host, port


def check_options(opts: BalancerOptions) -> list[str]:
    """Problems with the options (empty when they can be rendered)."""
    problems = []
    if not opts.masters:
        problems.append("give at least one master (--master URL, once per master)")
    if len(opts.masters) > MAX_MASTERS:
        problems.append(f"at most {MAX_MASTERS} masters")
    for url in opts.masters:
        if master_address(url) is None:
            problems.append(f"{url!r}: expected a master as http://HOST:PORT")
    if len(set(opts.masters)) != len(opts.masters):
        problems.append("a master is given twice")
    for name, value in (("listen", opts.listen), ("stats listen", opts.stats_listen)):
        if value is not None and not _LISTEN_RE.match(value):
            problems.append(f"{value!r}: expected [ADDRESS]:PORT for the {name}")
    for name in ("check_interval_s", "download_timeout_s", "maxconn"):
        if getattr(opts, name) <= 0:
            problems.append(f"{name}: expected a positive number")
    return problems


def render_haproxy_config(opts: BalancerOptions) -> str:
    """haproxy.cfg for HAProxy 2.6 (Debian 12): one frontend, one backend of masters."""
    bind = opts.listen if ":" in opts.listen else f":{opts.listen}"
    lines = [
        "# livestrap masters behind HAProxy (livestrap netboot lb-config).",
        "# Give this host's address to every master as --trusted-proxy (setting",
        "# trusted_proxies): the node's address comes in X-Forwarded-For.",
        "global",
        f"    maxconn {opts.maxconn}",
        "    log stdout format raw local0 notice",
        "",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option forwardfor  # the node's address, for the timeline and the limits",
        "    option redispatch  # a request that cannot reach its master goes to another",
        "    retries 2",
        "    retry-on conn-failure  # only before the request was sent: never twice",
        "    timeout connect 3s",
        f"    timeout client {opts.download_timeout_s}s",
        f"    timeout server {opts.download_timeout_s}s",
        "    timeout http-request 30s",
        "",
        "frontend livestrap",
        f"    bind {bind}",
        "    default_backend masters",
        "",
        "backend masters",
        "    balance leastconn  # downloads are long, reports short",
        "    option httpchk GET /healthz",
        "    http-check expect status 200",
        f"    default-server inter {opts.check_interval_s}s fall 2 rise 2",
    ]
    for number, url in enumerate(opts.masters, 1):
        address = master_address(url)
        assert address is not None, url  # check_options first
        host, port = address
        lines.append(f"    server m{number} {host}:{port} check")
    if opts.stats_listen:
        lines += [
            "",
            "frontend stats",
            f"    bind {opts.stats_listen}",
            "    stats enable",
            "    stats uri /",
            "    stats refresh 5s",
        ]
    return "\n".join(lines) + "\n"
