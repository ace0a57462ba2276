"""/settings: the build spec every build starts from, stored in the database."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi.responses import JSONResponse

from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.schemas.settings import (
    SpecBody,
    check_spec,
    parse_api_spec,
    read_settings,
    write_settings,
)
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec

router = APIRouter(prefix="/settings", tags=["settings"], dependencies=[AdminOnly])


@router.get("", response_model=BuildSpec)
def get_settings(session: SessionDep) -> JSONResponse:
    """The stored spec as saved (the defaults when nothing was saved yet).

    Returned as stored, not re-validated: a key file deleted since still shows here
    (and is reported by /settings/effective and by new builds)."""
    data = read_settings(session)
    return JSONResponse(BuildSpec().model_dump(mode="json") if data is None else data)


@router.get("/effective", response_model=BuildSpec)
def get_effective(state: StateDep, session: SessionDep) -> JSONResponse:
    """The stored spec with every default filled: mirror and key from the host, suite, kernel.

    422 when it cannot be resolved (e.g. no mirror known)."""
    data = read_settings(session)
    spec = parse_api_spec(data, state.settings, source="settings")
    return JSONResponse(resolve(spec, source="settings").model_dump(mode="json"))


@router.put("", response_model=BuildSpec)
def put_settings(
    state: StateDep, session: SessionDep, body: Annotated[SpecBody, Body()]
) -> JSONResponse:
    """Replace the stored spec. Checked like `livestrap spec check` (422 names the field);
    every path must be in <data-dir>/spec (relative ones are taken from it, stored absolute;
    upload files with PUT /settings/files/{path}), file:// URLs under an allowed root."""
    spec, _ = check_spec(body, state.settings, source="settings")
    return JSONResponse(write_settings(session, spec))
