"""A rack cache: nginx in a rack, between its nodes and the masters (docs/scaling.md).

Image files are immutable and their URLs carry the image id, so the cache keys them by
image id and file name (never the node's MAC) and keeps them until they age out: a new
activation means new URLs, never stale bytes. `proxy_cache_lock` lets one request per
file (per `slice` of it) go upstream while the rest of a boot storm waits for the cache;
`slice` caches range requests piece by piece. Upstream fetches say so
(X-Livestrap-Cache-Fill) and leave no timeline entry; each node's own download is reported
after it is over instead, as nginx's direct mode does (netboot.nginx: post_action,
which nothing waits for). Everything else — boot scripts, discovery, the
API — is passed through uncached with the node's address forwarded, and boot scripts point
the nodes back at the cache (X-Livestrap-Rack). The masters take the notices only from
addresses in their LIVESTRAP_TRUSTED_PROXIES. Pure renderer: the CLI prints the text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from livestrap.master.config import MAX_BODY_BYTES
from livestrap.netboot.nginx import (
    FILE_LOCATION,
    nginx_size,
    notice_location,
    proxy_lines,
    site_problems,
    upstream_address,
)

_SIZE_RE = re.compile(r"^[1-9][0-9]*[kmg]\Z")
_PATH_CHARS = re.compile(r"^/[A-Za-z0-9_./-]+\Z")


@dataclass(frozen=True)
class RackOptions:
    masters: tuple[str, ...]  # http://HOST:PORT, each a master or a load balancer
    listen: str = "80"
    server_name: str = "_"
    cache_dir: str = "/var/cache/livestrap-rack"
    max_size: str = "50g"  # nginx's max_size for the cache
    slice_size: str = "16m"  # what one upstream range request fetches
    inactive: str = "30d"  # a file nobody asked for this long leaves the cache
    # image file requests per second per node address (burst: ten seconds' worth); 0: no
    # limit. A boot takes three or four; a node in a loop is refused (429), not fed.
    node_rate: int = 10
    max_body_bytes: int = MAX_BODY_BYTES


def check_options(opts: RackOptions) -> list[str]:
    """Problems with the options (empty when they can be rendered)."""
    problems = []
    if not opts.masters:
        problems.append("name at least one master (--master http://HOST:PORT)")
    problems += site_problems(list(opts.masters), opts.listen, opts.server_name, "a master")
    if not _PATH_CHARS.match(opts.cache_dir) or ".." in opts.cache_dir:
        problems.append(f"{opts.cache_dir!r}: the cache directory must be an absolute path "
                        "of letters, digits and _ . - /")  # fmt: skip
    for name, flag in (("max_size", "--max-size"), ("slice_size", "--slice")):
        if not _SIZE_RE.match(getattr(opts, name)):
            problems.append(f"{name} ({flag}): {getattr(opts, name)!r} is not a size like "
                            "512m or 20g")  # fmt: skip
    if not re.match(r"^[1-9][0-9]*[smhd]\Z", opts.inactive):
        problems.append(f"inactive: {opts.inactive!r} is not a time like 12h or 30d")
    if not 0 <= opts.node_rate <= 100_000:
        problems.append(f"node_rate (--node-rate): {opts.node_rate} is not 0 (no limit) to "
                        "100000 requests per second")  # fmt: skip
    if opts.max_body_bytes <= 0:
        problems.append("max_body_bytes: expected a positive number of bytes")
    return problems


def render_rack_config(opts: RackOptions) -> str:
    """A conf.d file (cache path, upstream and server, inside nginx's http block)."""
    servers = [f"    server {upstream_address(m)};" for m in opts.masters]
    zone, limit = _node_limit(opts.node_rate)
    lines = [
        "# livestrap: a rack cache (generated: livestrap netboot rack-config).",
        "# Nodes in this rack boot from here: image files come from the cache, everything",
        "# else goes to the masters. Goes inside nginx's http block, e.g. as",
        "# /etc/nginx/conf.d/livestrap-rack.conf; list this host's address in the masters'",
        "# LIVESTRAP_TRUSTED_PROXIES (they take its reports and forwarded addresses).",
        f"proxy_cache_path {opts.cache_dir} levels=1:2 keys_zone=livestrap_rack:10m",
        f"                 max_size={opts.max_size} inactive={opts.inactive} use_temp_path=off;",
        *zone,
        "",
        "upstream livestrap_master {",
        *servers,
        "    keepalive 16;",
        "}",
        "",
        "server {",
        f"    listen {opts.listen};",
        f"    server_name {opts.server_name};",
        f"    client_max_body_size {nginx_size(opts.max_body_bytes)};",
        "",
        "    # Boot scripts, discovery and the API: passed through, never cached.",
        "    location / {",
        "        proxy_pass http://livestrap_master;",
        *proxy_lines(["        proxy_set_header X-Livestrap-Rack $scheme://$http_host;"]),
        "        proxy_buffering off;",
        "        proxy_request_buffering off;",
        "        proxy_read_timeout 1h;",
        "        proxy_next_upstream error timeout;  # another master, before a byte is sent",
        "    }",
        "",
        "    # Image files: cached by image id and name, one upstream fetch per slice.",
        f"    {FILE_LOCATION}",
        *limit,
        f"        slice {opts.slice_size};",
        "        proxy_cache livestrap_rack;",
        "        sendfile on;  # hits go from the cache's files to the socket, no copy",
        "        tcp_nopush on;",
        "        sendfile_max_chunk 2m;",
        "        proxy_cache_key $livestrap_image/$livestrap_file$slice_range;",
        "        proxy_cache_valid 200 206 365d;  # immutable: the URL names the image",
        "        proxy_ignore_headers Cache-Control Expires;",
        "        proxy_cache_lock on;  # a boot storm waits for the one fetch",
        "        proxy_cache_lock_timeout 10m;",
        "        proxy_cache_lock_age 10m;",
        "        proxy_cache_use_stale updating;",
        "        proxy_pass http://livestrap_master/boot/images/$livestrap_image/$livestrap_file;",
        *proxy_lines(
            [
                "        proxy_set_header Range $slice_range;",
                "        proxy_set_header X-Livestrap-Cache-Fill 1;",
            ],
            forwarded=False,
        ),
        "        proxy_next_upstream error timeout;",
        "        add_header X-Cache-Status $upstream_cache_status;",
        "        post_action /_livestrap/sent;  # the node's download, for its timeline",
        "    }",
        *notice_location("rack"),
        "}",
    ]
    return "\n".join(lines) + "\n"


def _node_limit(rate: int) -> tuple[list[str], list[str]]:
    """The per-node limit on image file requests: the zone (http block), the location's."""
    if rate == 0:
        return [], []
    zone = [f"limit_req_zone $binary_remote_addr zone=livestrap_rack_nodes:10m rate={rate}r/s;"]
    limit = [
        f"        limit_req zone=livestrap_rack_nodes burst={rate * 10} nodelay;  # per node",
        "        limit_req_status 429;",
        "        limit_req_log_level warn;",
    ]
    return zone, limit
