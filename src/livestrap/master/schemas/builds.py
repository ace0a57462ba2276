"""Build requests and build views of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

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
