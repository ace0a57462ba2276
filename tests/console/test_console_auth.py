"""Console login, logout, sessions, CSRF and the security headers, over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from consoleclient import CSRF, browser, log_in
from masterproc import Master, master_process

pytestmark = [pytest.mark.integration, pytest.mark.security]


def test_root_redirects_to_the_console(master: Master) -> None:
    with master.anonymous() as client:
        answer = client.get("/")
    assert answer.status_code == 307 and answer.headers["location"] == "/ui/"


def test_pages_need_a_login(master: Master) -> None:
    with master.anonymous() as client:
        answer = client.get("/ui/")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/ui/login?next=/ui/"
        htmx = client.get("/ui/", headers={"HX-Request": "true"})
        assert htmx.status_code == 401 and htmx.headers["hx-redirect"].startswith("/ui/login")
        assert client.get("/ui/login").status_code == 200


def test_the_admin_token_on_the_api_is_no_console_login(master: Master) -> None:
    with master.admin() as client:
        assert client.get("/ui/").status_code == 303


def test_a_wrong_token_is_refused(master: Master) -> None:
    with browser(master) as client:
        answer = client.post("/ui/login", data={"token": "nope"})
        assert answer.status_code == 401
        assert "not the admin token" in answer.text
        assert "livestrap_session" not in answer.cookies


def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(master: Master) -> None:
    with browser(master) as client:
        answer = client.post("/ui/login", data={"token": master.admin_token, "next": "/ui/"})
        cookie = answer.headers["set-cookie"].lower()
        for part in ("httponly", "samesite=strict", "path=/ui", "max-age="):
            assert part in cookie
        assert "secure" not in cookie  # plain HTTP here; HTTPS masters set it
        stolen = client.cookies["livestrap_session"]
        page = client.get("/ui/")
        assert page.status_code == 200 and "Overview" in page.text
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        assert client.post("/ui/logout", data={"csrf_token": token}).status_code == 303
        assert client.get("/ui/").status_code == 303
    with httpx.Client(base_url=master.url, cookies={"livestrap_session": stolen}) as replay:
        assert replay.get("/ui/").status_code == 303  # ended on the server, not only unset


def test_next_never_leaves_the_console(master: Master) -> None:
    with browser(master) as client:
        for target in ("https://evil.example/", "//evil.example/ui/", "/ui//evil", "/api/v1/nodes",
                       "/ui/../api/v1/nodes", "/ui/%2e%2e/api/v1/nodes", "/ui/.%2E/api",
                       "/ui/%252e%252e/api", "/ui/..%2fapi/v1/nodes", "/ui/nodes/.."):  # fmt: skip
            answer = client.post("/ui/login", data={"token": master.admin_token, "next": target})
            assert answer.headers["location"] == "/ui/", target
        answer = client.get("/ui/login", params={"next": "/ui/../api/v1/nodes"})
        assert answer.headers["location"] == "/ui/"  # logged in by now: straight there


def test_writes_need_the_csrf_token(console: tuple[httpx.Client, str]) -> None:
    client, token = console
    assert client.post("/ui/logout").status_code == 403
    assert client.post("/ui/logout", data={"csrf_token": "x" * 43}).status_code == 403
    assert client.post("/ui/logout", headers={"X-CSRF-Token": token}).status_code == 303


def test_a_cross_site_post_is_refused_even_with_the_token(
    console: tuple[httpx.Client, str],
) -> None:
    client, token = console
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    answer = client.post("/ui/logout", data={"csrf_token": token}, headers=evil)
    assert answer.status_code == 403
    answer = client.post("/ui/logout", data={"csrf_token": token},
                         headers={"Origin": "https://evil.example"})  # fmt: skip
    assert answer.status_code == 403
    assert client.get("/ui/").status_code == 200  # still logged in


def test_login_refuses_a_cross_site_form(master: Master) -> None:
    with httpx.Client(base_url=master.url) as client:
        answer = client.post("/ui/login", data={"token": master.admin_token},
                             headers={"Sec-Fetch-Site": "cross-site"})  # fmt: skip
        assert answer.status_code == 403


def test_security_headers(console: tuple[httpx.Client, str]) -> None:
    client, _ = console
    for path in ("/ui/", "/ui/login", "/ui/static/console.css"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp and "http" not in csp
        assert headers["x-content-type-options"] == "nosniff"
    assert client.get("/ui/").headers["cache-control"] == "no-store"
    assert "content-security-policy" not in client.get("/healthz").headers


def test_static_files_are_ours(console: tuple[httpx.Client, str]) -> None:
    client, _ = console
    page = client.get("/ui/").text
    assert "/ui/static/htmx-2.0.11.min.js" in page
    assert client.get("/ui/static/htmx-2.0.11.min.js").status_code == 200
    assert "<script>" not in page and " style=" not in page  # CSP would block them


def test_relogin_shows_the_overview(master: Master) -> None:
    with browser(master) as client:
        token = log_in(client, master)
        assert token
        assert "Active image" in client.get("/ui/").text


def test_a_new_login_ends_the_old_session(master: Master) -> None:
    with browser(master) as client:
        log_in(client, master)
        old = client.cookies["livestrap_session"]
        log_in(client, master)
        assert client.cookies["livestrap_session"] != old
        assert client.get("/ui/").status_code == 200
    with httpx.Client(base_url=master.url, cookies={"livestrap_session": old}) as replay:
        assert replay.get("/ui/").status_code == 303


def test_a_session_expires(tmp_path: Path) -> None:
    env = {"LIVESTRAP_CONSOLE_SESSION_S": "2"}
    with master_process(tmp_path / "data", env=env) as m, browser(m) as client:
        answer = client.post("/ui/login", data={"token": m.admin_token})
        assert "max-age=2;" in answer.headers["set-cookie"].lower()
        sid = client.cookies["livestrap_session"]
        token = CSRF.search(client.get("/ui/").text)[1]  # type: ignore[index]
        time.sleep(2.5)
        with httpx.Client(base_url=m.url, cookies={"livestrap_session": sid}) as late:
            answer = late.get("/ui/")  # the server ends it, whatever the browser keeps
            assert answer.status_code == 303
            assert answer.headers["location"] == "/ui/login?next=/ui/"
            answer = late.post("/ui/settings", data={"csrf_token": token, "spec": ""},
                               headers={"Origin": m.url})  # fmt: skip
            assert answer.status_code == 401 and "log in again" in answer.text
            assert late.post("/ui/logout", data={"csrf_token": token}).status_code == 303
