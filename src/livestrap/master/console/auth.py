"""/ui/login and /ui/logout. The password is the admin token (data-dir/admin.token): one
secret to guard, and what the CLI already uses. A session lives until logout or until
console_session_s has passed (docs/console.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from livestrap.master.console import sessions
from livestrap.master.console.guard import (
    PREFIX,
    check_same_origin,
    csrf_if_logged_in,
    safe_next,
    session_id,
)
from livestrap.master.console.render import page
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.tokens import token_matches

MAX_TOKEN_CHARS = 200
router = APIRouter(prefix=PREFIX, include_in_schema=False)


@router.get("/login")
def login_form(request: Request, db: SessionDep, next: str | None = None) -> Response:
    if sessions.find(db, session_id(request)) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return page(request, "login.html", None, title="Log in", next=safe_next(next), error=None)


@router.post("/login", dependencies=[Depends(check_same_origin)])
def login(
    request: Request,
    db: SessionDep,
    state: StateDep,
    token: Annotated[str, Form(max_length=MAX_TOKEN_CHARS)] = "",
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if not token_matches(token.strip(), state.admin_token):
        return page(request, "login.html", None, status_code=401, title="Log in",
                    next=safe_next(next), error="That is not the admin token.")  # fmt: skip
    sessions.end(db, session_id(request))  # a new login ends this browser's old session
    sid, _ = sessions.start(db, state.settings.console_session_s)
    answer = RedirectResponse(safe_next(next), status_code=303)
    answer.set_cookie(
        sessions.COOKIE,
        sid,
        max_age=int(state.settings.console_session_s),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return answer


@router.post("/logout", dependencies=[Depends(csrf_if_logged_in)])
def logout(request: Request, db: SessionDep) -> Response:
    """End the session; without a live one (expired, ended elsewhere) just go to the login."""
    sessions.end(db, session_id(request))
    answer = RedirectResponse(f"{PREFIX}/login", status_code=303)
    answer.delete_cookie(sessions.COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return answer
