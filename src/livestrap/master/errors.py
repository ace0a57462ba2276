"""Every error leaves the API as JSON `{"detail": "..."}` with a status that fits it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from livestrap.errors import (
    ArchiveError,
    BuildError,
    ConflictError,
    LivestrapError,
    NotFoundError,
    SpecError,
    StoreError,
)

STATUS: list[tuple[type[LivestrapError], int]] = [
    (NotFoundError, 404),
    (ConflictError, 409),
    (SpecError, 422),
    (ArchiveError, 422),
    (StoreError, 409),
    (BuildError, 409),
    (LivestrapError, 400),
]


def status_for(err: LivestrapError) -> int:
    return next(code for cls, code in STATUS if isinstance(err, cls))


def install_error_handlers(app: FastAPI) -> None:
    async def livestrap_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LivestrapError)
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    app.add_exception_handler(LivestrapError, livestrap_error)
