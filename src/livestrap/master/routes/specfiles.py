"""/settings/files: put keys, scripts and overlay trees into <data-dir>/spec, where API
specs take their paths from (`livestrap settings set` uploads what a spec names)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse

from livestrap.master import specfiles
from livestrap.master.deps import AdminOnly, StateDep

router = APIRouter(prefix="/settings/files", tags=["settings"], dependencies=[AdminOnly])
TAR_TYPE = "application/x-tar"
TRUNCATED = "X-Livestrap-Truncated"
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": f"The file's bytes; with Content-Type {TAR_TYPE}, a plain tar unpacked "
        "as a tree at the path (replacing what was there).",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            TAR_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


@router.get("", summary="List the spec folder")
def list_files(
    state: StateDep,
    response: Response,
    prefix: Annotated[
        str | None,
        Query(
            max_length=specfiles.MAX_NAME_CHARS,
            description="Only this path of the spec folder and what is in it.",
        ),
    ] = None,
) -> list[dict[str, object]]:
    """What is in the spec folder (path, type, size), sorted by path; links are listed,
    not followed. At most MAX_LIST_ENTRIES entries: a longer listing is cut, and the
    answer says so in its X-Livestrap-Truncated header."""
    spec_dir = state.settings.spec_dir
    top = None if prefix is None else specfiles.spec_path(spec_dir, prefix)
    rows, cut = specfiles.listing(spec_dir, top)
    if cut:
        response.headers[TRUNCATED] = (
            f"cut at {specfiles.MAX_LIST_ENTRIES} entries; ask for less with ?prefix=PATH"
        )
    return rows


@router.get("/{path:path}", response_class=FileResponse, summary="Read a spec-folder file")
def get_file(path: str, state: StateDep) -> FileResponse:
    """A file of the spec folder as stored (never through a link)."""
    dest = specfiles.spec_path(state.settings.spec_dir, path)
    return FileResponse(specfiles.regular_file(dest), media_type="application/octet-stream")


@router.delete("/{path:path}", status_code=204, summary="Delete from the spec folder")
def delete_file(path: str, state: StateDep) -> Response:
    """Delete a file or a whole tree of the spec folder."""
    specfiles.remove(specfiles.spec_path(state.settings.spec_dir, path))
    return Response(status_code=204)


async def _receive(request: Request, body: Path, limit: int) -> None:
    """The request body into `body`, refused (413) once it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload is larger than {limit} bytes")
    total = 0
    with body.open("wb") as fh:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise HTTPException(413, f"upload is larger than {limit} bytes")
            await anyio.to_thread.run_sync(fh.write, chunk)


def _store(staging: Path, body: Path, dest: Path, tree: bool) -> int:
    staged, members = body, 1
    if tree:
        staged = staging / "tree"
        with body.open("rb") as fh:
            members = specfiles.unpack_tree(fh, staged)
    else:
        body.chmod(0o644)
    specfiles.place(staged, dest)
    return members


@router.put("/{path:path}", openapi_extra=UPLOAD_BODY, summary="Store in the spec folder")
async def put_file(path: str, request: Request, state: StateDep) -> dict[str, object]:
    """Store a file (or, as a tar, a tree) at `path` in the spec folder; a spec then names
    it by that relative path. Limits: see livestrap.master.specfiles."""
    spec_dir = state.settings.spec_dir
    dest = specfiles.spec_path(spec_dir, path)
    tree = request.headers.get("content-type", "").split(";")[0].strip() == TAR_TYPE
    limit = specfiles.MAX_TREE_BYTES if tree else specfiles.MAX_FILE_BYTES
    staging = specfiles.new_staging(spec_dir)
    try:
        await _receive(request, staging / "body", limit)
        members = await anyio.to_thread.run_sync(_store, staging, staging / "body", dest, tree)
    finally:
        await anyio.to_thread.run_sync(lambda: shutil.rmtree(staging, ignore_errors=True))
    rel = dest.relative_to(spec_dir).as_posix()
    return {
        "path": rel,
        "type": "dir" if tree else "file",
        "members": members,
        "on_master": str(dest),
    }
