"""netboot lb-config: HAProxy in front of several masters, exact text and checks."""

from __future__ import annotations

import pytest

from livestrap.netboot.haproxy import (
    BalancerOptions,
    check_options,
    master_address,
    render_haproxy_config,
)

pytestmark = pytest.mark.unit

OPTS = BalancerOptions(masters=("http://192.0.2.11:8080", "http://[2001:db8::12]:8080"))


def test_haproxy_config_exact() -> None:
    assert check_options(OPTS) == []
    assert render_haproxy_config(OPTS) == (
        "# livestrap masters behind HAProxy (livestrap netboot lb-config).\n"
        "# Give this host's address to every master as --trusted-proxy (setting\n"
        "# trusted_proxies): the node's address comes in X-Forwarded-For.\n"
        "global\n"
        "    maxconn 20000\n"
        "    log stdout format raw local0 notice\n"
        "\n"
        "defaults\n"
        "    mode http\n"
        "    log global\n"
        "    option httplog\n"
        "    option forwardfor  # the node's address, for the timeline and the limits\n"
        "    option redispatch  # a request that cannot reach its master goes to another\n"
        "    retries 2\n"
        "    retry-on conn-failure  # only before the request was sent: never twice\n"
        "    timeout connect 3s\n"
        "    timeout client 3600s\n"
        "    timeout server 3600s\n"
        "    timeout http-request 30s\n"
        "\n"
        "frontend livestrap\n"
        "    bind :80\n"
        "    default_backend masters\n"
        "\n"
        "backend masters\n"
        "    balance leastconn  # downloads are long, reports short\n"
        "    option httpchk GET /healthz\n"
        "    http-check expect status 200\n"
        "    default-server inter 2s fall 2 rise 2\n"
        "    server m1 192.0.2.11:8080 check\n"
        "    server m2 [2001:db8::12]:8080 check\n"
    )


def test_stats_page_and_bind() -> None:
    opts = BalancerOptions(masters=("http://m1.example",), listen="127.0.0.1:8000",
                           stats_listen="127.0.0.1:8404", check_interval_s=5)  # fmt: skip
    text = render_haproxy_config(opts)
    assert "    bind 127.0.0.1:8000\n" in text and "    server m1 m1.example:80 check\n" in text
    assert "    default-server inter 5s fall 2 rise 2\n" in text
    assert text.endswith(
        "frontend stats\n    bind 127.0.0.1:8404\n    stats enable\n    stats uri /\n"
        "    stats refresh 5s\n"
    )


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://10.0.0.1:8080", ("10.0.0.1", 8080)),
        ("http://10.0.0.1/", ("10.0.0.1", 80)),
        ("http://[::1]:9", ("[::1]", 9)),
        ("https://10.0.0.1", None),
        ("http://10.0.0.1/api", None),
        ("http://u@10.0.0.1", None),
        ("http://10.0.0.1:99999", None),
        ("http://a b", None),
        ("http://x;\nserver evil 1.2.3.4:80", None),
    ],
)
def test_master_address(url: str, address: tuple[str, int] | None) -> None:
    assert master_address(url) == address


def test_bad_options_are_named() -> None:
    assert check_options(BalancerOptions(masters=())) == [
        "give at least one master (--master URL, once per master)"
    ]
    problems = check_options(BalancerOptions(
        masters=("http://a:1", "http://a:1", "ftp://b"), listen="80;x", check_interval_s=0,
    ))  # fmt: skip
    assert problems == [
        "'ftp://b': expected a master as http://HOST:PORT",
        "a master is given twice",
        "'80;x': expected [ADDRESS]:PORT for the listen",
        "check_interval_s: expected a positive number",
    ]
