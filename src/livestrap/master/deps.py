"""FastAPI dependencies, as `Annotated` aliases the routers declare in their signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request
from sqlalchemy.orm import Session

from livestrap.master.state import AppState
from livestrap.master.tokens import bearer, token_matches


async def get_state(request: Request) -> AppState:
    """`async` because FastAPI runs a plain `def` dependency in a worker thread: a thread
    hop per request for one attribute lookup."""
    state: AppState = request.app.state.livestrap
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_session(state: StateDep) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns, rolled back if not."""
    with state.db.session() as session:
        yield session


# scope="function": commit before the response is sent, so the client's next request
# sees what this one wrote (FastAPI otherwise closes `yield` dependencies afterwards).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def require_admin(
    state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """`async` for the same reason as get_state: it only compares two strings."""
    if not token_matches(bearer(authorization), state.admin_token):
        raise HTTPException(
            status_code=401,
            detail="admin token required (Authorization: Bearer <data-dir>/admin.token)",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminOnly = Depends(require_admin)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
