"""What every console request passes: security headers on the way out, a live session and,
for anything that changes state, a same-origin request carrying the session's CSRF token.

Logging in takes the admin token itself (docs/console.md); the session then lives in the
database (console.sessions) behind an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote, unquote, urlsplit

from fastapi import Depends, HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestrap.master.console import sessions
from livestrap.master.deps import SessionDep

PREFIX = "/ui"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A form body is parsed for its CSRF field only up to this size (declared), and never on the
# import route, whose body cap is the import's (GiBs): bigger posts send the header.
MAX_CSRF_FORM_BYTES = 1 << 20
HEADER_ONLY_ROUTES = frozenset({PREFIX + "/images/import"})
# No inline script or style, nothing from another origin, never inside a frame.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
)
NO_STORE = (b"cache-control", b"no-store")  # pages show secrets-adjacent state


class SecurityHeaders:
    """Adds HEADERS to every response under /ui (pages get no-store, static files not).
    Plain ASGI: discovery and boot requests pass through with one prefix check."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path != PREFIX and not path.startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        extra = HEADERS if path.startswith(PREFIX + "/static/") else (*HEADERS, NO_STORE)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                added = [(n, v) for n, v in extra if n not in names]
                message["headers"] = [*message.get("headers", []), *added]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class LoginRequired(Exception):
    """No live session: pages redirect to the login form (see console.mount)."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def login_url(next_path: str) -> str:
    return f"{PREFIX}/login?next={quote(next_path, safe='/')}"


def _decoded(path: str) -> str:
    """`path` percent-decoded until it stays the same (%252e is %2e is .), a few rounds."""
    for _ in range(4):
        path, before = unquote(path), path
        if path == before:
            break
    return path


def safe_next(value: str | None) -> str:
    """Where to go after login: a console path only (no other host, no `//` trick, no `.`
    or `..` segment however it is encoded: nothing that leaves /ui once normalised)."""
    if value and value.startswith(PREFIX + "/") and "//" not in value and "\\" not in value:
        parts = urlsplit(value)
        path = _decoded(parts.path)
        dots = any(segment in (".", "..") for segment in path.split("/"))
        odd = "//" in path or "\\" in path or not path.isprintable()
        if not parts.scheme and not parts.netloc and not dots and not odd:
            return value
    return PREFIX + "/"


def session_id(request: Request) -> str | None:
    return request.cookies.get(sessions.COOKIE)


def require_login(request: Request, db: SessionDep) -> sessions.Login:
    login = sessions.find(db, session_id(request))
    if login is None:
        raise LoginRequired(request.url.path)
    return login


LoginDep = Annotated[sessions.Login, Depends(require_login)]


def current_login(request: Request, db: SessionDep) -> sessions.Login | None:
    return sessions.find(db, session_id(request))


MaybeLoginDep = Annotated[sessions.Login | None, Depends(current_login)]


def same_origin(request: Request) -> bool:
    """False for a request a browser says another site made (Sec-Fetch-Site, Origin)."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:  # a browser sends Origin on every POST; curl and tests may not
        return True
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin == own


def small_form(request: Request) -> bool:
    """An urlencoded body of a declared size up to MAX_CSRF_FORM_BYTES, off the import."""
    if request.url.path in HEADER_ONLY_ROUTES:
        return False
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return False
    length = request.headers.get("content-length", "")
    return length.isascii() and length.isdigit() and int(length[:9]) <= MAX_CSRF_FORM_BYTES


async def given_csrf_token(request: Request) -> str | None:
    """The token from the header (htmx, fetch) or, for a small plain form post, its field.
    A multipart body, or any other, is never parsed here: uploads send the header."""
    if token := request.headers.get(CSRF_HEADER):
        return token
    if small_form(request):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


class CsrfRefused(HTTPException):
    """A write without the session's token: most often a page older than the login (the
    token is per session); the console answers with a page saying to reload."""


def refuse(reason: str) -> HTTPException:
    return HTTPException(status_code=403, detail=f"refused: {reason}")


async def check_same_origin(request: Request) -> None:
    if request.method not in SAFE_METHODS and not same_origin(request):
        raise refuse("a cross-site request")


async def check_csrf(request: Request, login: sessions.Login) -> None:
    """Same origin and the session's token, for anything but a read."""
    if request.method in SAFE_METHODS:
        return
    await check_same_origin(request)
    token = await given_csrf_token(request)
    if token is None or not hmac.compare_digest(token.encode(), login.csrf_token.encode()):
        raise CsrfRefused(403, "refused: a missing or wrong CSRF token (reload the page)")


async def require_csrf(request: Request, login: LoginDep) -> None:
    """Every state-changing console request: same origin and the session's token."""
    await check_csrf(request, login)


async def csrf_if_logged_in(request: Request, login: MaybeLoginDep) -> None:
    """Logout: with a live session, the same checks; without one there is nothing to end."""
    if login is not None:
        await check_csrf(request, login)


# What every console router (but login) declares: a live session, and CSRF on writes.
CONSOLE_GUARDS = [Depends(require_login), Depends(require_csrf)]
