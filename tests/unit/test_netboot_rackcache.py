"""netboot rack-config (a rack cache) and nginx-config --direct: exact text and checks."""

from __future__ import annotations

import pytest

from livestrap.netboot.nginx import NginxOptions, render_nginx_config
from livestrap.netboot.rackcache import RackOptions, check_options, render_rack_config

pytestmark = pytest.mark.unit

OPTS = RackOptions(
    masters=("http://192.0.2.11:8080", "http://[2001:db8::12]:8080"), listen="10.1.0.2:80"
)


def test_rack_config_exact() -> None:
    assert check_options(OPTS) == []
    assert render_rack_config(OPTS) == (
        "# livestrap: a rack cache (generated: livestrap netboot rack-config).\n"
        "# Nodes in this rack boot from here: image files come from the cache, everything\n"
        "# else goes to the masters. Goes inside nginx's http block, e.g. as\n"
        "# /etc/nginx/conf.d/livestrap-rack.conf; list this host's address in the masters'\n"
        "# LIVESTRAP_TRUSTED_PROXIES (they take its reports and forwarded addresses).\n"
        "proxy_cache_path /var/cache/livestrap-rack levels=1:2 keys_zone=livestrap_rack:10m\n"
        "                 max_size=50g inactive=30d use_temp_path=off;\n"
        "limit_req_zone $binary_remote_addr zone=livestrap_rack_nodes:10m rate=10r/s;\n"
        "\n"
        "upstream livestrap_master {\n"
        "    server 192.0.2.11:8080;\n"
        "    server [2001:db8::12]:8080;\n"
        "    keepalive 16;\n"
        "}\n"
        "\n"
        "server {\n"
        "    listen 10.1.0.2:80;\n"
        "    server_name _;\n"
        "    client_max_body_size 1m;\n"
        "\n"
        "    # Boot scripts, discovery and the API: passed through, never cached.\n"
        "    location / {\n"
        "        proxy_pass http://livestrap_master;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_set_header X-Livestrap-Rack $scheme://$http_host;\n"
        "        proxy_buffering off;\n"
        "        proxy_request_buffering off;\n"
        "        proxy_read_timeout 1h;\n"
        "        proxy_next_upstream error timeout;  # another master, before a byte is sent\n"
        "    }\n"
        "\n"
        "    # Image files: cached by image id and name, one upstream fetch per slice.\n"
        "    location ~ ^/boot/(?:m/[^/]+/)?images/(?<livestrap_image>[A-Za-z0-9._-]+)/"
        "(?<livestrap_file>vmlinuz|initrd\\.img|root\\.squashfs)$ {\n"
        "        limit_req zone=livestrap_rack_nodes burst=100 nodelay;  # per node\n"
        "        limit_req_status 429;\n"
        "        limit_req_log_level warn;\n"
        "        slice 16m;\n"
        "        proxy_cache livestrap_rack;\n"
        "        sendfile on;  # hits go from the cache's files to the socket, no copy\n"
        "        tcp_nopush on;\n"
        "        sendfile_max_chunk 2m;\n"
        "        proxy_cache_key $livestrap_image/$livestrap_file$slice_range;\n"
        "        proxy_cache_valid 200 206 365d;  # immutable: the URL names the image\n"
        "        proxy_ignore_headers Cache-Control Expires;\n"
        "        proxy_cache_lock on;  # a boot storm waits for the one fetch\n"
        "        proxy_cache_lock_timeout 10m;\n"
        "        proxy_cache_lock_age 10m;\n"
        "        proxy_cache_use_stale updating;\n"
        "        proxy_pass http://livestrap_master/boot/images/$livestrap_image/$livestrap_file;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        '        proxy_set_header X-Forwarded-For "";  # from nginx itself\n'
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_set_header Range $slice_range;\n"
        "        proxy_set_header X-Livestrap-Cache-Fill 1;\n"
        "        proxy_next_upstream error timeout;\n"
        "        add_header X-Cache-Status $upstream_cache_status;\n"
        "        post_action /_livestrap/sent;  # the node's download, for its timeline\n"
        "    }\n"
        "\n"
        "    location = /_livestrap/sent {\n"
        "        internal;\n"
        "        proxy_pass http://livestrap_master/boot/nginx/sent;\n"
        "        proxy_method POST;\n"
        "        proxy_pass_request_body off;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        '        proxy_set_header X-Forwarded-For "";  # from nginx itself\n'
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        '        proxy_set_header Content-Length "";\n'
        "        proxy_set_header X-Livestrap-Client $remote_addr;  # the node\n"
        "        proxy_set_header X-Original-URI $request_uri;\n"
        "        proxy_set_header X-Bytes-Sent $body_bytes_sent;\n"
        "        proxy_set_header X-Request-Time $request_time;\n"
        "        proxy_set_header X-Request-Completion $request_completion;\n"
        "        proxy_set_header X-Original-Status $status;  # a refused one is no download\n"
        "        proxy_set_header X-Livestrap-Phase whole;\n"
        "        proxy_set_header X-Livestrap-Via rack;\n"
        "        proxy_set_header X-Original-Method $request_method;\n"
        "    }\n"
        "}\n"
    )


def test_node_rate_zero_renders_no_limit() -> None:
    with_limit = render_rack_config(OPTS)
    without = render_rack_config(RackOptions(masters=OPTS.masters, listen=OPTS.listen,
                                             node_rate=0))  # fmt: skip
    dropped = [line for line in with_limit.splitlines() if line not in without.splitlines()]
    assert len(dropped) == 4 and all("limit_req" in line for line in dropped)


def test_direct_nginx_config_exact() -> None:
    """The same site as without --direct up to the image files, then these."""
    handed_off = render_nginx_config(NginxOptions("/srv/images"))
    direct = render_nginx_config(NginxOptions("/srv/images", direct=True))
    head = handed_off[: handed_off.index("    # The master answers /boot")]
    assert direct == head + (
        "    # Image files straight from the store; the master hears of each one aside.\n"
        "    location ~ ^/boot/(?:m/[^/]+/)?images/(?<livestrap_image>[A-Za-z0-9._-]+)/"
        "(?<livestrap_file>vmlinuz|initrd\\.img|root\\.squashfs)$ {\n"
        "        alias /srv/images/$livestrap_image/$livestrap_file;\n"
        "        default_type application/octet-stream;\n"
        "        sendfile on;\n"
        "        tcp_nopush on;\n"
        "        sendfile_max_chunk 2m;  # one fast client cannot hold a worker\n"
        "        post_action /_livestrap/sent;  # the transfer, for the timeline (not waited for)\n"
        "    }\n"
        "\n"
        "    location = /_livestrap/sent {\n"
        "        internal;\n"
        "        proxy_pass http://livestrap_master/boot/nginx/sent;\n"
        "        proxy_method POST;\n"
        "        proxy_pass_request_body off;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        '        proxy_set_header X-Forwarded-For "";  # from nginx itself\n'
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        '        proxy_set_header Content-Length "";\n'
        "        proxy_set_header X-Livestrap-Client $remote_addr;  # the node\n"
        "        proxy_set_header X-Original-URI $request_uri;\n"
        "        proxy_set_header X-Bytes-Sent $body_bytes_sent;\n"
        "        proxy_set_header X-Request-Time $request_time;\n"
        "        proxy_set_header X-Request-Completion $request_completion;\n"
        "        proxy_set_header X-Original-Status $status;  # a refused one is no download\n"
        "        proxy_set_header X-Livestrap-Phase whole;\n"
        "        proxy_set_header X-Livestrap-Via nginx;\n"
        "        proxy_set_header X-Original-Method $request_method;\n"
        "    }\n"
        "}\n"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"masters": ()}, "at least one master"),
        ({"masters": ("https://m:1",)}, "expected a master as http://HOST:PORT"),
        ({"masters": ("http://m:1/x",)}, "expected a master as http://HOST:PORT"),
        ({"listen": "80;"}, "nginx's listen"),
        ({"server_name": "a;b"}, "not a server_name"),
        ({"cache_dir": "relative"}, "absolute path"),
        ({"cache_dir": "/var/../etc"}, "absolute path"),
        ({"cache_dir": "/var/cache/a b"}, "absolute path"),
        ({"max_size": "20 g"}, "max_size"),
        ({"slice_size": "0m"}, "slice_size"),
        ({"inactive": "forever"}, "inactive"),
        ({"max_body_bytes": 0}, "max_body_bytes"),
        ({"node_rate": -1}, "--node-rate"),
    ],
)
def test_rack_config_refuses(change: dict[str, object], problem: str) -> None:
    opts = RackOptions(**{**OPTS.__dict__, **change})  # type: ignore[arg-type]
    assert any(problem in p for p in check_options(opts)), check_options(opts)
