"""Log in, log out, the session cookie and cross-site forms, in a real chromium."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from browserkit import Browser
from helpers import serve_directory
from masterproc import Master

pytestmark = [pytest.mark.e2e, pytest.mark.security]


def test_a_wrong_token_shows_the_error(browser: Browser) -> None:
    browser.go("/ui/")
    assert browser.path == "/ui/login?next=/ui/"
    browser.shot("login")
    browser.fill("#token", "not-the-token")
    browser.submit_and_wait("button#login")
    assert "not the admin token" in browser.text("p.error")
    assert browser.path.startswith("/ui/login")
    browser.shot("login-refused")


def test_the_right_token_lands_on_the_overview(browser: Browser, master: Master) -> None:
    browser.go("/ui/")
    browser.fill("#token", master.admin_token)
    browser.submit_and_wait("button#login")
    assert browser.path == "/ui/"
    assert browser.text("h1") == "Overview"
    browser.shot("overview")


def test_the_session_cookie_is_not_readable_from_scripts(logged_in: Browser) -> None:
    names = {c["name"]: c for c in logged_in.driver.get_cookies()}
    cookie = names["livestrap_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/ui"
    assert "livestrap_session" not in logged_in.driver.execute_script("return document.cookie")


def test_logout_ends_the_session(logged_in: Browser) -> None:
    logged_in.log_out()
    assert logged_in.path == "/ui/login"
    assert not [c for c in logged_in.driver.get_cookies() if c["name"] == "livestrap_session"]
    logged_in.go("/ui/")
    assert logged_in.path == "/ui/login?next=/ui/"
    assert logged_in.find("#token")


ATTACK = """<!doctype html><html><body>
<form id="attack" method="post" action="{url}/ui/logout">
<input name="csrf_token" value="guess"></form>
<script src="attack.js"></script></body></html>
"""


def test_a_form_on_another_origin_cannot_log_the_user_out(
    logged_in: Browser, master: Master, tmp_path: Path
) -> None:
    """Another port on 127.0.0.1 is another origin (but the same site, so SameSite=Strict
    alone would still send the cookie): the master's origin and CSRF checks refuse it."""
    (tmp_path / "index.html").write_text(ATTACK.format(url=master.url))
    (tmp_path / "attack.js").write_text('document.getElementById("attack").submit();\n')
    with serve_directory(tmp_path) as evil:
        assert evil != master.url
        logged_in.driver.get(evil + "/index.html")
        logged_in.wait(lambda d: d.current_url.startswith(master.url))
        logged_in.wait(lambda d: "refused" in d.page_source)
    assert logged_in.path == "/ui/logout"
    logged_in.broken()  # the 403 itself is logged as a failed load
    logged_in.go("/ui/")
    assert logged_in.path == "/ui/" and logged_in.text("h1") == "Overview"


def test_headers_and_counts_on_the_overview(logged_in: Browser, master: Master) -> None:
    answer = httpx.get(master.url + "/ui/login", timeout=10)
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    counts = logged_in.text("ul.counts")
    for label in ("online", "offline", "refused reports"):
        assert label in counts
    assert "No image is active" in logged_in.text(".cards")


def test_the_console_watch_catches_inline_script(logged_in: Browser) -> None:
    """The check every test ends with works: an inline script is refused by the CSP, and
    the refusal shows in the browser's console log."""
    logged_in.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.ran = 1';"
        "document.body.appendChild(s);"
    )
    assert logged_in.driver.execute_script("return window.ran") is None
    refused = logged_in.wait(lambda _: logged_in.broken())
    assert "Content Security Policy" in refused[0]
