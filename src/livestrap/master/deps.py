"""FastAPI dependencies, as `Annotated` aliases the routers declare in their signatures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from livestrap.master.state import AppState
from livestrap.master.tokens import token_matches

# Both tokens travel as `Authorization: Bearer <token>`. Declared through FastAPI's security
# classes so the OpenAPI document names them (Swagger's Authorize button); auto_error=False
# because the checks below answer with their own 401 detail, not FastAPI's.
ADMIN_SCHEME = "adminToken"
DISCOVERY_SCHEME = "discoveryToken"
admin_bearer = HTTPBearer(
    scheme_name=ADMIN_SCHEME,
    description="The admin token: the file admin.token in the master's data dir.",
    auto_error=False,
)
discovery_bearer = HTTPBearer(
    scheme_name=DISCOVERY_SCHEME,
    description="The discovery token (discovery.token in the data dir; the nodes' "
    "livestrap.token= boot option). Only POST /api/v1/discovery takes it.",
    auto_error=False,
)
AdminCredentials = Annotated[HTTPAuthorizationCredentials | None, Security(admin_bearer)]


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


def credentials(given: HTTPAuthorizationCredentials | None) -> str | None:
    """The token of a bearer header (HTTPBearer gives None for a missing, empty or other scheme)."""
    return given.credentials if given else None


async def require_admin(state: StateDep, given: AdminCredentials) -> None:
    """`async` for the same reason as get_state: it only compares two strings."""
    if not token_matches(credentials(given), state.admin_token):
        raise HTTPException(
            status_code=401,
            detail="admin token required (Authorization: Bearer <data-dir>/admin.token)",
            headers={"WWW-Authenticate": "Bearer"},
        )


AdminOnly = Depends(require_admin)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None
