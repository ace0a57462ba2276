"""nginx in front of the master: nginx sends the image files straight from the store
(sendfile, no copy through user space) and proxies everything else to the master.

The master still answers every /boot request first — it validates the MAC, image and
file, records the start on the boot timeline and hands the sending over with
X-Accel-Redirect — and nginx's post_action reports the end of each transfer back, so
the timeline is the same as without nginx (see master/accel.py). post_action is an old
core directive that nginx's documentation does not list; Debian's nginx 1.22 has it, and
tests/api/test_boot_nginx.py runs the rendered config in a real nginx.
With `direct`, nginx sends the image files without asking the master first, and
post_action reports each whole transfer afterwards. The first byte does not wait for the
master (no faster overall on 2 cores: docs/benchmarks.md), but the master no longer
checks each request (its /boot budget, its hash check of the files): only for a store on
this host's own disk. The rack cache (netboot.rackcache) reports the same way.
Pure renderer: `render_nginx_config` returns the text; the CLI prints it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from livestrap import bootpaths
from livestrap.master.config import IMPORT_FRAMING_BYTES, MAX_BODY_BYTES, MAX_IMPORT_BYTES
from livestrap.master.specfiles import MAX_TREE_BYTES as SPEC_FILES_BYTES

INTERNAL = "/_livestrap/images/"  # internal location: the store's images/ directory
SENT = "/_livestrap/sent"  # internal location: post_action -> the master
IMPORT = "/api/v1/images/import"  # the routes with large bodies (master.limits)
SPEC_FILES = "/api/v1/settings/files/"
_LISTEN_RE = re.compile(r"^(\S+:)?\d{1,5}\Z|^\[[0-9a-fA-F:.]+\]:\d{1,5}\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9_.*-]+( [A-Za-z0-9_.*-]+)*\Z")


# what nginx tells the master after a transfer (master/routes/boot_notices.py)
SENT_HEADERS = [
    '        proxy_set_header Content-Length "";',
    "        proxy_set_header X-Livestrap-Client $remote_addr;  # the node",
    "        proxy_set_header X-Original-URI $request_uri;",
    "        proxy_set_header X-Bytes-Sent $body_bytes_sent;",
    "        proxy_set_header X-Request-Time $request_time;",
    "        proxy_set_header X-Request-Completion $request_completion;",
    "        proxy_set_header X-Original-Status $status;  # a refused one is no download",
]


@dataclass(frozen=True)
class NginxOptions:
    images_dir: str  # absolute: <data-dir>/images
    master: str = "http://127.0.0.1:8080"  # where nginx reaches the master
    listen: str = "80"  # nginx `listen`: PORT or ADDRESS:PORT
    server_name: str = "_"
    max_body_bytes: int = MAX_BODY_BYTES  # the master's caps, so nginx refuses first
    max_import_bytes: int = MAX_IMPORT_BYTES
    direct: bool = False  # nginx sends the files at once; the master hears of it aside


def site_problems(masters: list[str], listen: str, server_name: str, noun: str) -> list[str]:
    """What every rendered nginx site checks: its upstreams, its listen, its name."""
    problems = []
    for master in masters:
        parts = urlsplit(master)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            problems.append(f"{master!r}: expected {noun} as http://HOST:PORT")
    if not _LISTEN_RE.match(listen):
        problems.append(f"{listen!r}: expected PORT or ADDRESS:PORT for nginx's listen")
    if not _NAME_RE.match(server_name):
        problems.append(f"{server_name!r}: not a server_name")
    return problems


def check_options(opts: NginxOptions) -> list[str]:
    """Problems with the options (empty when they can be rendered)."""
    problems = []
    if not opts.images_dir.startswith("/") or any(c in opts.images_dir for c in " ;{}\"'\n"):
        problems.append(f"{opts.images_dir!r}: the images directory must be an absolute path "
                        "without spaces, quotes, braces or semicolons")  # fmt: skip
    problems += site_problems([opts.master], opts.listen, opts.server_name, "the master")
    for name in ("max_body_bytes", "max_import_bytes"):
        if getattr(opts, name) <= 0:
            problems.append(f"{name}: expected a positive number of bytes")
    return problems


# The end-of-transfer notice goes without X-Forwarded-For: the master takes it only from
# nginx itself (a peer of 127.0.0.1 with none), never from a client through /boot/.
NO_FORWARDED_FOR = '        proxy_set_header X-Forwarded-For "";  # from nginx itself'


def proxy_lines(master_headers: list[str], forwarded: bool = True) -> list[str]:
    """What every proxied location shares: HTTP/1.1 keep-alive to the master, the
    client's address (uvicorn trusts X-Forwarded-For from 127.0.0.1 by default)."""
    return [
        "        proxy_http_version 1.1;",
        '        proxy_set_header Connection "";',
        "        proxy_set_header Host $http_host;",
        "        proxy_set_header X-Forwarded-For $remote_addr;" if forwarded else NO_FORWARDED_FOR,
        "        proxy_set_header X-Forwarded-Proto $scheme;",
        *master_headers,
    ]


def nginx_size(n: int) -> str:
    """A byte count in nginx's size syntax (k, m, g suffixes when exact)."""
    for shift, unit in ((30, "g"), (20, "m"), (10, "k")):
        if n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


def upstream_address(master: str) -> str:
    """HOST:PORT of an http://HOST:PORT URL, as nginx's `server` takes it."""
    parts = urlsplit(master)
    if parts.hostname and ":" in parts.hostname:
        return f"[{parts.hostname}]:{parts.port or 80}"
    return f"{parts.hostname}:{parts.port or 80}"


# A boot file request, by the two URL forms of bootpaths; the MAC is not captured, so
# it never names a file on disk or in a cache.
FILE_LOCATION = (
    r"location ~ ^/boot/(?:m/[^/]+/)?images/(?<livestrap_image>[A-Za-z0-9._-]+)/"
    r"(?<livestrap_file>vmlinuz|initrd\.img|root\.squashfs)$ {"
)


def notice_location(via: str) -> list[str]:
    """The internal location post_action reports a whole transfer to, once it is over
    (X-Livestrap-Phase: whole): the master writes its start, stamped X-Request-Time
    before, and for the squashfs its end. Nothing waits for it. (A `mirror` subrequest
    for the start, measured here, makes nginx 1.22 report 0 bytes sent at the end.)
    `via` names the sender on the timeline."""
    return [
        "",
        *sent_location([
            "        proxy_set_header X-Livestrap-Phase whole;",
            f"        proxy_set_header X-Livestrap-Via {via};",
            "        proxy_set_header X-Original-Method $request_method;",
        ]),
    ]  # fmt: skip


def sent_location(extra_headers: list[str]) -> list[str]:
    """The internal location whose requests become POST /boot/nginx/sent."""
    return [
        f"    location = {SENT} {{",
        "        internal;",
        f"        proxy_pass http://livestrap_master{bootpaths.SENT_PATH};",
        "        proxy_method POST;",
        "        proxy_pass_request_body off;",
        *proxy_lines(SENT_HEADERS + extra_headers, forwarded=False),
        "    }",
    ]


def _direct_files(images: str) -> list[str]:
    return [
        "    # Image files straight from the store; the master hears of each one aside.",
        f"    {FILE_LOCATION}",
        f"        alias {images}$livestrap_image/$livestrap_file;",
        "        default_type application/octet-stream;",
        "        sendfile on;",
        "        tcp_nopush on;",
        "        sendfile_max_chunk 2m;  # one fast client cannot hold a worker",
        f"        post_action {SENT};  # the transfer, for the timeline (not waited for)",
        "    }",
        *notice_location("nginx"),
    ]


def _handed_off_files(images: str) -> list[str]:
    return [
        "    # The master answers /boot; for image files with X-Accel-Redirect to the files.",
        f"    location {bootpaths.PREFIX}/ {{",
        "        proxy_pass http://livestrap_master;",
        *proxy_lines([f"        proxy_set_header X-Livestrap-Accel {INTERNAL};"]),
        "    }",
        "",
        f"    location {INTERNAL} {{",
        "        internal;",
        f"        alias {images};",
        "        default_type application/octet-stream;",
        "        sendfile on;",
        "        tcp_nopush on;",
        "        sendfile_max_chunk 2m;  # one fast client cannot hold a worker",
        f"        post_action {SENT};  # the end of the transfer, for the timeline",
        "    }",
        "",
        *sent_location([]),
    ]


def render_nginx_config(opts: NginxOptions) -> str:
    """A conf.d file (upstream + server, inside nginx's http block)."""
    upstream = upstream_address(opts.master)
    import_cap = opts.max_import_bytes + IMPORT_FRAMING_BYTES  # as master.limits
    images = opts.images_dir.rstrip("/") + "/"
    files = _direct_files(images) if opts.direct else _handed_off_files(images)
    lines = [
        "# livestrap: nginx in front of the master (generated: livestrap netboot nginx-config).",
        "# nginx sends the image files itself; the master checks each request, keeps the boot",
        "# timeline and serves everything else. Goes inside nginx's http block, e.g. as",
        "# /etc/nginx/conf.d/livestrap.conf; nginx's workers must be able to read the images.",
        "upstream livestrap_master {",
        f"    server {upstream};",
        "    keepalive 16;",
        "}",
        "",
        "server {",
        f"    listen {opts.listen};",
        f"    server_name {opts.server_name};",
        f"    client_max_body_size {nginx_size(opts.max_body_bytes)};  # the master's "
        "LIVESTRAP_MAX_BODY_BYTES",
        "",
        "    location / {",
        "        proxy_pass http://livestrap_master;",
        *proxy_lines([]),
        "        proxy_buffering off;  # build logs are streamed live",
        "        proxy_request_buffering off;",
        "        proxy_read_timeout 1h;",
        "    }",
        "",
        "    # Image bundles, the one large body (admin only): LIVESTRAP_MAX_IMPORT_BYTES",
        "    # and 1 MiB of multipart framing.",
        f"    location = {IMPORT} {{",
        f"        client_max_body_size {nginx_size(import_cap)};",
        "        proxy_pass http://livestrap_master;",
        *proxy_lines([]),
        "        proxy_request_buffering off;  # streamed to the master, not to nginx's disk",
        "        proxy_read_timeout 1h;",
        "    }",
        "",
        "    # Uploads into <data-dir>/spec (admin only): files and overlay trees as tar.",
        f"    location {SPEC_FILES} {{",
        f"        client_max_body_size {nginx_size(SPEC_FILES_BYTES)};",
        "        proxy_pass http://livestrap_master;",
        *proxy_lines([]),
        "        proxy_request_buffering off;",
        "    }",
        "",
        *files,
        "}",
    ]
    return "\n".join(lines) + "\n"
