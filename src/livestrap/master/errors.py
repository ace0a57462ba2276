"""Every error leaves the API as JSON `{"detail": "..."}` with a status that fits it."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
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
from livestrap.store.limits import InsufficientSpace

STATUS: list[tuple[type[LivestrapError], int]] = [
    (InsufficientSpace, 507),
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


def validation_details(exc: RequestValidationError) -> list[dict[str, object]]:
    """Field path, message and type of each problem; never the input echoed back (it may
    hold NaN or bytes that JSON cannot carry, which would turn a 422 into a 500)."""
    return [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type"))}
        for e in exc.errors()
    ]


def install_error_handlers(app: FastAPI) -> None:
    async def livestrap_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LivestrapError)
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_details(exc)}, status_code=422)

    app.add_exception_handler(LivestrapError, livestrap_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
