"""/builds: queue builds of the stored settings, watch them, read their logs, cancel them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.joblog import sse_lines, tail_log
from livestrap.master.jobs import BuildQueue
from livestrap.master.schemas.builds import BuildDetail, BuildRequest, BuildSummary
from livestrap.master.services.builds import (
    build_detail,
    build_summary,
    final_state,
    find_build,
    newest_builds,
)

router = APIRouter(prefix="/builds", tags=["builds"], dependencies=[AdminOnly])
BuildRef = Annotated[
    str, PathParam(description="A build id, or a unique prefix of one (as git takes commits).")
]
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


@router.post("", status_code=202, response_model=BuildDetail)
def start_build(
    state: StateDep, session: SessionDep, body: BuildRequest | None = None
) -> BuildDetail:
    """Queue a build; it runs when the builds before it are done (one at a time)."""
    req = body or BuildRequest()
    build_id = state.jobs.submit(req.overrides, activate=req.activate, force=req.force)
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
    build_id = row.id
    jobs: BuildQueue = state.jobs

    async def finished() -> bool:
        return await run_in_threadpool(jobs.is_finished, build_id)

    chunks = tail_log(Path(row.log_path), finished, follow=follow)
    if accept and "text/event-stream" in accept:

        async def end() -> str:
            return json.dumps(await run_in_threadpool(final_state, state.db, build_id))

        return StreamingResponse(
            sse_lines(chunks, end), media_type="text/event-stream", headers=STREAM_HEADERS
        )
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8", headers=STREAM_HEADERS)
