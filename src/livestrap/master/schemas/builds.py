"""Build requests and build views of the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from livestrap.master.models import Build

BuildState = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]


class BuildRequest(BaseModel):
    """POST /api/v1/builds: build the stored settings, optionally changed for this build."""

    model_config = ConfigDict(extra="forbid")
    overrides: dict[str, Any] | None = Field(
        default=None,
        description="Spec keys that replace the settings' for this build only "
        '(e.g. {"packages": ["htop"]}); the result is validated as a whole.',
    )
    activate: bool = Field(default=False, description="Activate the image when it is built.")
    force: bool = Field(default=False, description="Rebuild even if an image has these inputs.")


class BuildSummary(BaseModel):
    """One build: where it is, how it ended, and where to read its log."""

    id: str
    seq: int
    state: BuildState
    stage: str | None = Field(description="Stage running now, or where the build ended.")
    progress: float = Field(ge=0.0, le=1.0, description="Fraction of stages done.")
    created: datetime
    started: datetime | None
    finished: datetime | None
    image_id: str | None
    reused: bool = Field(description="An image with the same inputs existed; none was built.")
    error: str | None
    activate: bool
    force: bool
    log_url: str


class BuildDetail(BuildSummary):
    """GET /api/v1/builds/{id}: the summary plus the full effective spec it builds."""

    spec: dict[str, Any]


def _utc(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _fields(row: Build) -> dict[str, Any]:
    return {
        "id": row.id,
        "seq": row.seq,
        "state": row.state,
        "stage": row.stage,
        "progress": row.progress,
        "created": _utc(row.created_at),
        "started": _utc(row.started_at),
        "finished": _utc(row.finished_at),
        "image_id": row.image_id,
        "reused": row.reused,
        "error": row.error,
        "activate": row.activate,
        "force": row.force,
        "log_url": f"/api/v1/builds/{row.id}/log",
    }


def build_summary(row: Build) -> BuildSummary:
    return BuildSummary(**_fields(row))


def build_detail(row: Build) -> BuildDetail:
    return BuildDetail(**_fields(row), spec=row.spec)
