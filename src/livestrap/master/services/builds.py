"""Builds as the API shows them: the rows of the `builds` table (the queue that runs them
is master.jobs), found by id or unique id prefix, and the one mapper to their schemas."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from livestrap.errors import NotFoundError, SpecError
from livestrap.master.db import Database
from livestrap.master.joblog import sse_lines, tail_log
from livestrap.master.lookup import full_id
from livestrap.master.models import Build
from livestrap.master.schemas.builds import BuildDetail, BuildRequest, BuildState, BuildSummary
from livestrap.master.services.convert import utc, utc_or_none
from livestrap.master.services.settings import MAX_SPEC_CHARS, TOO_LONG
from livestrap.specerrors import validation_problems
from livestrap.yamlfile import parse_yaml

if TYPE_CHECKING:
    from livestrap.master.jobs import BuildQueue

# A log stream must reach the reader as it is written: no cache, no proxy buffering.
STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def find_build(session: Session, ref: str, *, fresh: bool = False) -> Build:
    """The build `ref` names: its id or a unique id prefix (409 when several match).
    `fresh`: read again what this session already loaded (the queue changed it since)."""
    row = session.get(Build, ref, populate_existing=fresh)  # a full id: one lookup
    if row is None and (build_id := full_id(session, Build.id, "build", ref)) is not None:
        row = session.get(Build, build_id, populate_existing=fresh)
    if row is None:
        raise NotFoundError(f"no build {ref}")
    return row


def newest_builds(session: Session, limit: int) -> list[Build]:
    return list(session.scalars(select(Build).order_by(Build.seq.desc()).limit(limit)))


def final_state(db: Database, build_id: str) -> dict[str, Any]:
    """How a build ended, for the last event of its log stream. Its own transaction: the
    stream outlives the request's session."""
    with db.session() as session:
        row = find_build(session, build_id)
        return {"state": row.state, "image_id": row.image_id, "error": row.error}


def build_summary(row: Build) -> BuildSummary:
    """The one mapper of a build row to its summary (the detail view extends it)."""
    return BuildSummary(
        id=row.id,
        seq=row.seq,
        state=cast(BuildState, row.state),  # the column is text; pydantic checks the value
        stage=row.stage,
        progress=row.progress,
        created=utc(row.created_at),
        started=utc_or_none(row.started_at),
        finished=utc_or_none(row.finished_at),
        image_id=row.image_id,
        reused=row.reused,
        error=row.error,
        activate=row.activate,
        force=row.force,
        log_url=f"/api/v1/builds/{row.id}/log",
    )


def build_detail(row: Build) -> BuildDetail:
    return BuildDetail(**build_summary(row).model_dump(), spec=row.spec)


def queue_build(jobs: BuildQueue, req: BuildRequest) -> str:
    """Queue a build of the settings with `req`'s overrides (the API's and the console's)."""
    return jobs.submit(req.overrides, activate=req.activate, force=req.force)


def request_from_yaml(overrides: str, *, activate: bool) -> BuildRequest:
    """A build request from the console's form: the overrides as YAML (blank: none),
    checked by the API's own BuildRequest. SpecError, with .problems, when it is not one."""
    if len(overrides) > MAX_SPEC_CHARS:
        raise SpecError(f"overrides: over {MAX_SPEC_CHARS} characters", [TOO_LONG])
    data = parse_yaml(overrides, "overrides", plain=True) if overrides.strip() else None
    try:
        return BuildRequest.model_validate({"overrides": data, "activate": activate})
    except ValidationError as err:
        raise SpecError(f"overrides are invalid: {err}", validation_problems(err)) from None


def log_chunks(jobs: BuildQueue, row: Build, *, follow: bool = True) -> AsyncIterator[bytes]:
    """The build's log as it is written (master.joblog.tail_log), ending with the build."""
    build_id = row.id

    async def finished() -> bool:
        return await run_in_threadpool(jobs.is_finished, build_id)

    return tail_log(Path(row.log_path), finished, follow=follow)


def log_events(jobs: BuildQueue, db: Database, row: Build) -> AsyncIterator[str]:
    """The log as Server-Sent Events: one `data:` per line, then `event: end` with how
    the build ended (final_state, as JSON)."""
    build_id = row.id

    async def end() -> str:
        return json.dumps(await run_in_threadpool(final_state, db, build_id))

    return sse_lines(log_chunks(jobs, row), end)
