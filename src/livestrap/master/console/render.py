"""The console's Jinja2 environment and the one function that renders a page.

Autoescaping is on for every template whatever its name (Starlette's default escapes only
*.html): everything a node reports is shown as text, never as markup."""

from __future__ import annotations

import functools
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from livestrap import __version__
from livestrap.master.console.sessions import Login

HERE = Path(__file__).resolve().parent
HTMX = "htmx-2.0.11.min.js"


def when(at: float | datetime | None) -> str:
    """A time as operators read it: UTC, to the second."""
    if at is None:
        return "-"
    if isinstance(at, datetime):
        at = at.timestamp()
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def ago(at: float | datetime | None, now: float | None = None) -> str:
    if at is None:
        return "-"
    if isinstance(at, datetime):
        at = at.timestamp()
    s = max(0, int((time.time() if now is None else now) - at))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if s >= size:
            return f"{s // size} {unit} ago"
    return f"{s} s ago"


def size(n: int | None) -> str:
    if n is None:
        return "-"
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@functools.cache
def templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt name fails the page, not shows ""
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=when, ago=ago, size=size)
    env.globals.update(version=__version__, htmx=HTMX)
    return Jinja2Templates(env=env)


def page(
    request: Request,
    name: str,
    login: Login | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """Render `name`; every page gets the login (for its CSRF token) and the nav's place."""
    context.setdefault("section", name.split("/")[0].split(".")[0])
    context.setdefault("title", context["section"].capitalize())
    context["csrf_token"] = login.csrf_token if login else ""
    context["logged_in"] = login is not None
    return templates().TemplateResponse(request, name, context, status_code=status_code)
