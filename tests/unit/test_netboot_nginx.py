"""netboot nginx-config and the master's nginx hand-off: exact text, pure helpers."""

from __future__ import annotations

import pytest

from livestrap.master.accel import accel_prefix
from livestrap.netboot.nginx import NginxOptions, check_options, render_nginx_config

pytestmark = pytest.mark.unit

OPTS = NginxOptions(images_dir="/srv/livestrap/images", listen="192.0.2.10:80")


def test_nginx_config_exact() -> None:
    assert check_options(OPTS) == []
    assert render_nginx_config(OPTS) == (
        "# livestrap: nginx in front of the master (generated: livestrap netboot nginx-config).\n"
        "# nginx sends the image files itself; the master checks each request, keeps the boot\n"
        "# timeline and serves everything else. Goes inside nginx's http block, e.g. as\n"
        "# /etc/nginx/conf.d/livestrap.conf; nginx's workers must be able to read the images.\n"
        "upstream livestrap_master {\n"
        "    server 127.0.0.1:8080;\n"
        "    keepalive 16;\n"
        "}\n"
        "\n"
        "server {\n"
        "    listen 192.0.2.10:80;\n"
        "    server_name _;\n"
        "    client_max_body_size 1m;  # the master's LIVESTRAP_MAX_BODY_BYTES\n"
        "\n"
        "    location / {\n"
        "        proxy_pass http://livestrap_master;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_buffering off;  # build logs are streamed live\n"
        "        proxy_request_buffering off;\n"
        "        proxy_read_timeout 1h;\n"
        "    }\n"
        "\n"
        "    # Image bundles, the one large body (admin only): LIVESTRAP_MAX_IMPORT_BYTES\n"
        "    # and 1 MiB of multipart framing.\n"
        "    location = /api/v1/images/import {\n"
        "        client_max_body_size 16385m;\n"
        "        proxy_pass http://livestrap_master;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_request_buffering off;  # streamed to the master, not to nginx's disk\n"
        "        proxy_read_timeout 1h;\n"
        "    }\n"
        "\n"
        "    # Uploads into <data-dir>/spec (admin only): files and overlay trees as tar.\n"
        "    location /api/v1/settings/files/ {\n"
        "        client_max_body_size 256m;\n"
        "        proxy_pass http://livestrap_master;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_request_buffering off;\n"
        "    }\n"
        "\n"
        "    # The master answers /boot; for image files with X-Accel-Redirect to the files.\n"
        "    location /boot/ {\n"
        "        proxy_pass http://livestrap_master;\n"
        "        proxy_http_version 1.1;\n"
        '        proxy_set_header Connection "";\n'
        "        proxy_set_header Host $http_host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_set_header X-Forwarded-Proto $scheme;\n"
        "        proxy_set_header X-Livestrap-Accel /_livestrap/images/;\n"
        "    }\n"
        "\n"
        "    location /_livestrap/images/ {\n"
        "        internal;\n"
        "        alias /srv/livestrap/images/;\n"
        "        default_type application/octet-stream;\n"
        "        sendfile on;\n"
        "        tcp_nopush on;\n"
        "        sendfile_max_chunk 2m;  # one fast client cannot hold a worker\n"
        "        post_action /_livestrap/sent;  # the end of the transfer, for the timeline\n"
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
        "    }\n"
        "}\n"
    )


def test_nginx_config_other_master_and_trailing_slash() -> None:
    opts = NginxOptions(images_dir="/data/images/", master="http://[::1]:9000/", listen="8080",
                        server_name="boot.example")  # fmt: skip
    assert check_options(opts) == []
    text = render_nginx_config(opts)
    assert "    server [::1]:9000;\n" in text
    assert "        alias /data/images/;\n" in text
    assert "    listen 8080;\n    server_name boot.example;\n" in text


@pytest.mark.parametrize(
    ("opts", "problem"),
    [
        (NginxOptions(images_dir="images"), "must be an absolute path"),
        (NginxOptions(images_dir="/a b/images"), "must be an absolute path"),
        (NginxOptions(images_dir="/x;y"), "must be an absolute path"),
        (NginxOptions(images_dir="/i", master="https://m:1"), "expected the master as"),
        (NginxOptions(images_dir="/i", master="http://m:1/api"), "expected the master as"),
        (NginxOptions(images_dir="/i", listen="80; include /etc/x"), "for nginx's listen"),
        (NginxOptions(images_dir="/i", server_name="a;b"), "not a server_name"),
    ],
)
def test_nginx_config_refuses(opts: NginxOptions, problem: str) -> None:
    problems = check_options(opts)
    assert len(problems) == 1
    assert problem in problems[0]


@pytest.mark.parametrize(
    ("value", "prefix"),
    [
        ("/_livestrap/images/", "/_livestrap/images/"),
        (None, None),
        ("", None),
        ("/_livestrap/images", None),  # must end with /
        ("/a/../b/", None),
        ("/a b/", None),
        ("http://x/", None),
    ],
)
def test_accel_prefix(value: str | None, prefix: str | None) -> None:
    assert accel_prefix(value) == prefix
