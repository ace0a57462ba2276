"""Errors under /ui answer as a page, not as the API's JSON: an unknown path (404), a wrong
method (405), a body over its cap (413), a stale CSRF token (403: reload), an unknown
build's log, a bad form field (422) and a server error (500). Everywhere else the API's
handlers answer as before. The page has no nav: the handler does not know the session."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope

from livestrap.errors import LivestrapError
from livestrap.master.console.guard import HEADERS, NO_STORE, PREFIX, CsrfRefused, safe_next
from livestrap.master.console.render import page
from livestrap.master.errors import status_for

log = logging.getLogger("livestrap.master")
TITLES = {401: "Logged out", 403: "Refused", 404: "Not found", 405: "Not allowed",
          413: "Too large", 422: "Refused", 500: "Server error"}  # fmt: skip
MAX_MESSAGE = 500


def under_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def back_to(request: Request) -> str:
    """The console page the request came from (a same-origin Referer), else the overview."""
    referer = urlsplit(request.headers.get("referer", "")[:1000])
    if referer.netloc != request.headers.get("host"):
        return PREFIX + "/"
    return safe_next(referer.path + (f"?{referer.query}" if referer.query else ""))


def problem_page(
    request: Request, status: int, message: str, *, back: str = PREFIX + "/",
    back_label: str = "Back to the console", headers: dict[str, str] | None = None,
) -> Response:  # fmt: skip
    """The problem page: the status's title, the message (as text), one link."""
    answer = page(request, "problem.html", None, status_code=status, section="problem",
                  title=TITLES.get(status, "Refused"), message=message[:MAX_MESSAGE],
                  back=back, back_label=back_label)  # fmt: skip
    answer.headers.update(headers or {})
    return answer


def _http_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() in ("allow", "connection")}
    if isinstance(exc, CsrfRefused):
        return problem_page(request, 403, "This page is older than your login (or was opened "
                            "in another session): reload it and try again.",
                            back=back_to(request), back_label="Back to the page")  # fmt: skip
    return problem_page(request, exc.status_code, str(exc.detail), headers=headers)


def _livestrap_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, LivestrapError)
    return problem_page(request, status_for(exc), str(exc))


def _invalid_page(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    wrong = "; ".join(".".join(map(str, e.get("loc", ()))) for e in exc.errors())
    return problem_page(request, 422, f"The request was not understood ({wrong[:200]}).")


def server_error(request: Request, exc: Exception) -> Response:
    """Starlette's ServerErrorMiddleware calls this outside every other middleware, so the
    console's page sets the security headers itself."""
    if not under_console(request.url.path):
        return PlainTextResponse("Internal Server Error", status_code=500)
    try:
        answer = problem_page(request, 500, "Something went wrong on the master; its log "
                              "says what.")  # fmt: skip
    except Exception:  # the page itself failed: plain text, still with the headers
        log.exception("the console's error page failed")
        answer = PlainTextResponse("Internal Server Error", status_code=500)
    for name, value in (*HEADERS, NO_STORE):
        answer.headers[name.decode()] = value.decode()
    return answer


def too_large(scope: Scope, detail: str) -> Response | None:
    """master.limits' 413 (a declared Content-Length over the cap) as a page under /ui."""
    if not under_console(scope.get("path", "")):
        return None
    return problem_page(Request(scope), 413, detail, headers={"connection": "close"})


def _on_console(app: FastAPI, exc_class: type[Exception], render: Callable[..., Response]) -> None:
    """`render` for `exc_class` under /ui; elsewhere the handler there was before."""
    previous = app.exception_handlers[exc_class]

    async def handler(request: Request, exc: Exception) -> Response:
        if under_console(request.url.path):
            return render(request, exc)
        answer = previous(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(exc_class, handler)


def install(app: FastAPI) -> None:
    _on_console(app, HTTPException, _http_page)
    _on_console(app, LivestrapError, _livestrap_page)
    _on_console(app, RequestValidationError, _invalid_page)
    app.add_exception_handler(Exception, server_error)
