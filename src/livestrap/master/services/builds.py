"""Builds as the API shows them: the rows of the `builds` table (the queue that runs them
is master.jobs), found by id or unique id prefix, and the one mapper to their schemas."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.errors import NotFoundError
from livestrap.master.db import Database
from livestrap.master.lookup import full_id
from livestrap.master.models import Build
from livestrap.master.schemas.builds import BuildDetail, BuildState, BuildSummary
from livestrap.master.services.convert import utc, utc_or_none


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
