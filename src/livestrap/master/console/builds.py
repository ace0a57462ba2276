"""/ui/builds: start a build of the settings (overrides as YAML, activate), the history,
and one build's page, whose log follows live (our SSE route, read by static/builds.js)
and whose state, stage and progress bar a small htmx fragment refreshes every second."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from livestrap.errors import ConflictError, NotFoundError, Problem, SpecError
from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.render import page
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.models import Build
from livestrap.master.services.builds import (
    STREAM_HEADERS,
    find_build,
    log_events,
    newest_builds,
    queue_build,
    request_from_yaml,
)
from livestrap.master.services.settings import MAX_SPEC_CHARS

HISTORY = 50  # builds in the history table, newest first
GOING = frozenset({"queued", "running"})
router = APIRouter(prefix=f"{PREFIX}/builds", dependencies=CONSOLE_GUARDS, include_in_schema=False)


def history(
    request: Request, login: LoginDep, db: SessionDep, status_code: int = 200,
    overrides: str = "", activate: bool = False, problems: list[Problem] | None = None,
    error: str | None = None,
) -> Response:  # fmt: skip
    return page(
        request, "builds.html", login, status_code=status_code, title="Builds",
        builds=newest_builds(db, HISTORY), overrides=overrides, activate=activate,
        problems=problems or [], error=error, max_chars=MAX_SPEC_CHARS,
    )  # fmt: skip


def missing(request: Request, login: LoginDep, err: NotFoundError) -> Response:
    return page(request, "builds_missing.html", login, status_code=404, section="builds",
                title="No such build", message=str(err))  # fmt: skip


def build_page(
    request: Request, login: LoginDep, row: Build, status_code: int = 200, error: str | None = None
) -> Response:
    return page(request, "build.html", login, status_code=status_code, section="builds",
                title=f"Build {row.id[:8]}", build=row, going=row.state in GOING,
                error=error)  # fmt: skip


@router.get("")
def builds(request: Request, login: LoginDep, db: SessionDep) -> Response:
    return history(request, login, db)


@router.post("")
def start(
    request: Request,
    login: LoginDep,
    db: SessionDep,
    state: StateDep,
    overrides: Annotated[str, Form()] = "",
    activate: Annotated[str | None, Form()] = None,
) -> Response:
    """Queue a build as POST /api/v1/builds does; a refusal shows on the form, as typed."""
    wanted = activate is not None
    try:
        build_id = queue_build(state.jobs, request_from_yaml(overrides, activate=wanted))
    except SpecError as err:
        return history(request, login, db, 422, overrides, wanted, err.listed())
    except ConflictError as err:
        return history(request, login, db, 409, overrides, wanted, error=str(err))
    return RedirectResponse(f"{PREFIX}/builds/{build_id}", status_code=303)


@router.get("/{build_id}")
def build(build_id: str, request: Request, login: LoginDep, db: SessionDep) -> Response:
    try:
        return build_page(request, login, find_build(db, build_id))
    except NotFoundError as err:
        return missing(request, login, err)


@router.get("/{build_id}/status")
def status(build_id: str, request: Request, login: LoginDep, db: SessionDep) -> Response:
    """The state, stage, progress and cancel form: what build.html polls while it runs."""
    try:
        row = find_build(db, build_id)
    except NotFoundError as err:
        return missing(request, login, err)
    return page(request, "build_status.html", login, build=row, going=row.state in GOING)


@router.get("/{build_id}/log")
async def log(build_id: str, state: StateDep, db: SessionDep) -> Response:
    """The log as Server-Sent Events for the page's EventSource: the API's stream
    (services.builds.log_events), behind the console's session instead of the token."""
    row = await run_in_threadpool(find_build, db, build_id)  # NotFoundError: the API's 404
    events = log_events(state.jobs, state.db, row)
    return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)


@router.post("/{build_id}/cancel")
def cancel(
    build_id: str, request: Request, login: LoginDep, db: SessionDep, state: StateDep
) -> Response:
    """Cancel as DELETE /api/v1/builds/{id} does; a finished build shows why not (409)."""
    try:
        row = find_build(db, build_id)
        state.jobs.cancel(row.id)
    except NotFoundError as err:
        return missing(request, login, err)
    except ConflictError as err:
        return build_page(request, login, find_build(db, row.id, fresh=True), 409, str(err))
    return RedirectResponse(f"{PREFIX}/builds/{row.id}", status_code=303)
