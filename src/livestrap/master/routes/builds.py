"""/builds: queue builds of the stored settings, watch them, read their logs, cancel them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from livestrap.errors import NotFoundError
from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.joblog import sse_lines, tail_log
from livestrap.master.jobs import BuildQueue
from livestrap.master.lookup import full_id
from livestrap.master.models import Build
from livestrap.master.schemas.builds import (
    BuildDetail,
    BuildRequest,
    BuildSummary,
    build_detail,
    build_summary,
)
from livestrap.master.state import AppState

router = APIRouter(prefix="/builds", tags=["builds"], dependencies=[AdminOnly])
BuildRef = Annotated[
    str, PathParam(description="A build id, or a unique prefix of one (as git takes commits).")
]
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _row(state: AppState, ref: str) -> Build:
    """The build `ref` names: its id or a unique id prefix (409 when several match)."""
    with state.db.session() as session:
        row = session.get(Build, ref)  # a full id: one lookup, as before prefixes
        if row is None and (build_id := full_id(session, Build.id, "build", ref)) is not None:
            row = session.get(Build, build_id)
        if row is None:
            raise NotFoundError(f"no build {ref}")
        return row


@router.post("", status_code=202, response_model=BuildDetail)
def start_build(state: StateDep, body: BuildRequest | None = None) -> BuildDetail:
    """Queue a build; it runs when the builds before it are done (one at a time)."""
    req = body or BuildRequest()
    build_id = state.jobs.submit(req.overrides, activate=req.activate, force=req.force)
    return build_detail(_row(state, build_id))


@router.get("", response_model=list[BuildSummary])
def list_builds(
    session: SessionDep, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[BuildSummary]:
    """Builds, newest first."""
    rows = session.scalars(select(Build).order_by(Build.seq.desc()).limit(limit)).all()
    return [build_summary(row) for row in rows]


@router.get("/{build_id}", response_model=BuildDetail)
def get_build(build_id: BuildRef, state: StateDep) -> BuildDetail:
    return build_detail(_row(state, build_id))


@router.delete("/{build_id}", status_code=202, response_model=BuildDetail)
def cancel_build(build_id: BuildRef, state: StateDep) -> BuildDetail:
    """Cancel: a queued build at once; a running one stops its commands and cleans up,
    then shows `cancelled`. 409 when the build has already finished."""
    build_id = _row(state, build_id).id
    state.jobs.cancel(build_id)
    return build_detail(_row(state, build_id))


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
    follow: Annotated[
        bool, Query(description="Keep streaming until the build ends (false: what is there now).")
    ] = True,
    accept: Annotated[str | None, Header()] = None,
) -> StreamingResponse:
    """The build's log; `Accept: text/event-stream` gives Server-Sent Events instead."""
    row = await run_in_threadpool(_row, state, build_id)
    build_id = row.id
    jobs: BuildQueue = state.jobs

    async def finished() -> bool:
        return await run_in_threadpool(jobs.is_finished, build_id)

    chunks = tail_log(Path(row.log_path), finished, follow=follow)
    if accept and "text/event-stream" in accept:

        async def end() -> str:
            last = await run_in_threadpool(_row, state, build_id)
            return json.dumps({"state": last.state, "image_id": last.image_id, "error": last.error})

        return StreamingResponse(
            sse_lines(chunks, end), media_type="text/event-stream", headers=STREAM_HEADERS
        )
    return StreamingResponse(chunks, media_type="text/plain; charset=utf-8", headers=STREAM_HEADERS)
