"""Console clients that log in like a browser does (cookies, same-origin headers)."""

from __future__ import annotations

import re

import httpx

from masterproc import Master

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def browser(master: Master) -> httpx.Client:
    """A cookie-keeping client that sends the headers a same-origin browser form sends."""
    return httpx.Client(
        base_url=master.url,
        timeout=30,
        headers={"Origin": master.url, "Sec-Fetch-Site": "same-origin"},
    )


def log_in(client: httpx.Client, master: Master) -> str:
    """Log in with the admin token; the page's CSRF token."""
    answer = client.post("/ui/login", data={"token": master.admin_token, "next": "/ui/"})
    assert answer.status_code == 303, answer.text
    page = client.get("/ui/")
    assert page.status_code == 200
    found = CSRF.search(page.text)
    assert found, "no CSRF token on the page"
    return found[1]
