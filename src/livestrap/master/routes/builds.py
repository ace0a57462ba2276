"""/builds: queue builds of the stored settings, watch them, read their logs, cancel them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.schemas.builds import BuildDetail, BuildRequest, BuildSummary
from livestrap.master.services.builds import (
    STREAM_HEADERS,
    build_detail,
    build_summary,
    find_build,
    log_chunks,
    log_events,
    newest_builds,
    queue_build,
)

router = APIRouter(prefix="/builds", tags=["builds"], dependencies=[AdminOnly])
BuildRef = Annotated[
    str, PathParam(description="A build id, or a unique prefix of one (as git takes commits).")
]


@router.post("", status_code=202, response_model=BuildDetail)
def start_build(
    state: StateDep, session: SessionDep, body: BuildRequest | None = None
) -> BuildDetail:
    """Queue a build; it runs when the builds before it are done (one at a time)."""
    build_id = queue_build(state.jobs, body or BuildRequest())
    return build_detail(find_build(session, build_id))


@router.get("", response_model=list[BuildSummary])
def list_builds(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[BuildSummary]:
    """Builds, newest first."""
    return [build_summary(row) for row in newest_builds(session, limit)]


@router.get("/{build_id}", response_model=BuildDetail)
def get_build(build_id: BuildRef, session: SessionDep) -> BuildDetail:
    return build_detail(find_build(session, build_id))


@router.delete("/{build_id}", status_code=202, response_model=BuildDetail)
def cancel_build(build_id: BuildRef, state: StateDep, session: SessionDep) -> BuildDetail:
    """Cancel: a queued build at once; a running one stops its commands and cleans up,
    then shows `cancelled`. 409 when the build has already finished."""
    build_id = find_build(session, build_id).id
    state.jobs.cancel(build_id)
    return build_detail(find_build(session, build_id, fresh=True))


@router.get(
    "/{build_id}/log",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The log, live while the build runs (chunked), then complete.",
            "content": {"text/plain": {}, "text/event-stream": {}},
        }
    },
)
async def build_log(
    build_id: BuildRef,
    state: StateDep,
    session: SessionDep,
    follow: Annotated[
        bool, Query(description="Keep streaming until the build ends (false: what is there now).")
    ] = True,
    accept: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The build's log; `Accept: text/event-stream` gives Server-Sent Events instead."""
    row = await run_in_threadpool(find_build, session, build_id)
    if accept and "text/event-stream" in accept:
        events = log_events(state.jobs, state.db, row)
        return StreamingResponse(events, media_type="text/event-stream", headers=STREAM_HEADERS)
    chunks = log_chunks(state.jobs, row, follow=follow)
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8", headers=STREAM_HEADERS)
