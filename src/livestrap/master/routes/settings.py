"""/settings: the build spec every build starts from, stored in the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.schemas.settings import SpecBody
from livestrap.master.services import settings as service
from livestrap.spec import BuildSpec

router = APIRouter(prefix="/settings", tags=["settings"], dependencies=[AdminOnly])


@router.get("", response_model=BuildSpec)
def get_settings(session: SessionDep) -> JSONResponse:
    """The stored spec as saved (the defaults when nothing was saved yet).

    Returned as stored, not re-validated: a key file deleted since still shows here
    (and is reported by /settings/effective and by new builds)."""
    return JSONResponse(service.shown_settings(session))


@router.get("/effective", response_model=BuildSpec)
def get_effective_settings(state: StateDep, session: SessionDep) -> JSONResponse:
    """The stored spec with every default filled: mirror and key from the host, suite, kernel.

    422 when it cannot be resolved (e.g. no mirror known)."""
    return JSONResponse(service.effective_settings(session, state.settings))


@router.put("", response_model=BuildSpec)
def put_settings(
    state: StateDep, session: SessionDep, body: Annotated[SpecBody, Body()]
) -> JSONResponse:
    """Replace the stored spec. Checked like `livestrap spec check` (422 names the field);
    every path must be in <data-dir>/spec (relative ones are taken from it, stored absolute;
    upload files with PUT /settings/files/{path}), file:// URLs under an allowed root."""
    return JSONResponse(service.replace_settings(session, body, state.settings))
