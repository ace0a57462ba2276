"""Every error leaves the API as JSON `{"detail": "..."}` with a status that fits it."""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError

from livestrap.errors import (
    ArchiveError,
    BuildError,
    ConflictError,
    LivestrapError,
    NotFoundError,
    SpecError,
    StoreError,
)
from livestrap.master.schemas.bounds import NUL_MESSAGE, text_safe
from livestrap.store.limits import InsufficientSpace

log = logging.getLogger("livestrap.master")

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

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
SQLITE_FULL = 13  # sqlite3's SQLITE_FULL: "database or disk is full"
PG_DISK_FULL = "53100"  # PostgreSQL's disk_full SQLSTATE
DISK_FULL_DETAIL = (
    "the master is out of disk space (its data dir or its database); nothing was changed. "
    "It works again as soon as there is room."
)


def status_for(err: LivestrapError) -> int:
    return next(code for cls, code in STATUS if isinstance(err, cls))


def disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from (even `from None`), is a full disk:
    ENOSPC/EDQUOT, SQLite's SQLITE_FULL, PostgreSQL's disk_full."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(current, DBAPIError):
            orig = current.orig
            if getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL:
                return True
            if getattr(orig, "sqlstate", None) == PG_DISK_FULL:
                return True
            if "database or disk is full" in str(orig):
                return True
        current = current.__cause__ or current.__context__
    return False


def nul_refused(exc: BaseException) -> bool:
    """Whether the driver refused a NUL in a text value (psycopg does, before it sends):
    input that a model let through, so the client's error, not the server's."""
    return isinstance(exc, DBAPIError) and "NUL (0x00)" in str(exc.orig)


def validation_details(exc: RequestValidationError) -> list[dict[str, object]]:
    """Field path, message and type of each problem; never the input echoed back (it may
    hold NaN, a lone surrogate or bytes that JSON cannot carry: a 422 would become a 500)."""
    return [
        {
            "loc": text_safe([str(p) if isinstance(p, bytes) else p for p in e.get("loc", ())]),
            "msg": text_safe(str(e.get("msg", ""))),
            "type": str(e.get("type")),
        }
        for e in exc.errors()
    ]


def _disk_full_response(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s: out of disk space (%s)", request.method, request.url.path, exc)
    return JSONResponse({"detail": DISK_FULL_DETAIL}, status_code=507)


def install_error_handlers(app: FastAPI) -> None:
    async def livestrap_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, LivestrapError)
        if disk_full(exc):  # the store says "cannot write ...", raised from the ENOSPC
            return _disk_full_response(request, exc)
        return JSONResponse({"detail": str(exc)}, status_code=status_for(exc))

    async def invalid_request(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_details(exc)}, status_code=422)

    async def environment_error(request: Request, exc: Exception) -> JSONResponse:
        """507 for a full disk, 422 for a NUL the models missed; anything else stays the
        server error it is."""
        if disk_full(exc):
            return _disk_full_response(request, exc)
        if nul_refused(exc):
            log.warning("%s %s: a text value with a NUL reached the database",
                        request.method, request.url.path)  # fmt: skip
            return JSONResponse({"detail": f"a text value {NUL_MESSAGE}"}, status_code=422)
        raise exc

    app.add_exception_handler(LivestrapError, livestrap_error)
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(OSError, environment_error)
    app.add_exception_handler(DBAPIError, environment_error)
