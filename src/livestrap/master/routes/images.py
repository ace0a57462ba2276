"""/api/v1/images: the store over HTTP — what `livestrap images ...` does on the master host.

Bundles go through `<data-dir>/tmp` (the store's filesystem, not the system's /tmp, which
may be small or a tmpfs) and are removed as soon as the request is done with them. Import
checks happen in store.bundle: a refused bundle is a 422 naming the member, and the store
is left as it was.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from livestrap.master.artifacts import valid_image_id
from livestrap.master.deps import AdminOnly, StateDep
from livestrap.master.schemas.images import Activated, ImageDetail, ImageDiff, ImageSummary
from livestrap.store.bundle import Compression, export_image, import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import CHUNK

router = APIRouter(dependencies=[AdminOnly], tags=["images"])

EXPORT_PREFIX, UPLOAD_PREFIX = "api-export-", "api-upload-"
STALE_AFTER_S = 24 * 3600
SUFFIX: dict[str, str] = {"zst": ".tar.zst", "xz": ".tar.xz", "gz": ".tar.gz", "none": ".tar"}
MEDIA_TYPE: dict[str, str] = {
    "zst": "application/zstd",
    "xz": "application/x-xz",
    "gz": "application/gzip",
    "none": "application/x-tar",
}
BUNDLE_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}
IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A bundle made by export (any compression), as the raw body or a "
        "multipart `file` field.",
        "content": {
            "application/octet-stream": {"schema": BUNDLE_SCHEMA},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": BUNDLE_SCHEMA}}
            },
        },
    }
}


def _temp_file(store: ImageStore, prefix: str, suffix: str) -> tuple[IO[bytes], Path]:
    """A new private file under tmp/; leftovers of killed requests are swept first."""
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    _sweep_stale(store.tmp_dir)
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=store.tmp_dir)
    return os.fdopen(fd, "wb"), Path(name)


def _sweep_stale(tmp_dir: Path) -> None:
    cutoff = time.time() - STALE_AFTER_S
    for entry in tmp_dir.iterdir():
        if not entry.name.startswith((EXPORT_PREFIX, UPLOAD_PREFIX)):
            continue
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
        except OSError:
            pass  # another request's sweep got there first


def _resolve(store: ImageStore, ref: str) -> str:
    """An image id or a unique prefix of one -> the id (404 none, 409 several)."""
    return store.resolve(valid_image_id(ref))


@router.get("/images", response_model=list[ImageSummary])
def list_images(state: StateDep) -> list[ImageSummary]:
    """Every image, oldest first, and which one is active."""
    return [ImageSummary.of(info) for info in state.store.list()]


@router.get("/images/{image_id}", response_model=ImageDetail)
def show_image(image_id: str, state: StateDep) -> ImageDetail:
    """An image's full metadata (spec, packages, artifact checksums, ...)."""
    meta = state.store.get(_resolve(state.store, image_id))
    return ImageDetail.of(meta, state.store.active_id())


@router.get("/images/{a}/diff/{b}", response_model=ImageDiff)
def diff_images(a: str, b: str, state: StateDep) -> ImageDiff:
    """Packages added, removed and changed in version going from image a to image b."""
    a, b = _resolve(state.store, a), _resolve(state.store, b)
    return ImageDiff.of(a, b, state.store.diff(a, b))


@router.post("/images/{image_id}/activate", response_model=Activated)
def activate_image(image_id: str, state: StateDep) -> Activated:
    """Make the image the one nodes boot from their next /boot/ipxe on."""
    image_id = _resolve(state.store, image_id)
    state.store.activate(image_id)
    return Activated(active=image_id)


@router.delete("/images/{image_id}", status_code=204, responses={409: {"description": "Active."}})
def delete_image(image_id: str, state: StateDep) -> Response:
    """Delete an image; the active one is refused (409): activate another first."""
    state.store.delete(_resolve(state.store, image_id))
    return Response(status_code=204)


@router.get(
    "/images/{image_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {m: {"schema": BUNDLE_SCHEMA} for m in MEDIA_TYPE.values()}}},
)
def export_bundle(image_id: str, state: StateDep, compression: Compression = "zst") -> FileResponse:
    """Download the image as a bundle (tar of its directory) for `images import` elsewhere."""
    store = state.store
    image_id = _resolve(store, image_id)
    store.get(image_id)  # 404 before any temp file exists
    fh, path = _temp_file(store, EXPORT_PREFIX, SUFFIX[compression])
    fh.close()
    try:
        export_image(store, image_id, path, compression)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return FileResponse(
        path,
        media_type=MEDIA_TYPE[compression],
        filename=f"{image_id}{SUFFIX[compression]}",
        background=BackgroundTask(path.unlink, missing_ok=True),
    )


async def _upload_chunks(request: Request) -> AsyncIterator[bytes]:
    """The bundle's bytes: a multipart `file` field, or else the raw body."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise HTTPException(422, "multipart upload needs the bundle in a `file` field")
            while chunk := await upload.read(CHUNK):
                yield chunk
    else:
        async for chunk in request.stream():
            yield chunk


async def _receive(request: Request, store: ImageStore) -> Path:
    """Stream the upload to a temp file, writing in 1 MiB blocks off the event loop."""
    fh, path = _temp_file(store, UPLOAD_PREFIX, ".bundle")
    try:
        with fh:
            buf = bytearray()
            async for chunk in _upload_chunks(request):
                buf += chunk
                if len(buf) >= CHUNK:
                    await anyio.to_thread.run_sync(fh.write, bytes(buf))
                    buf.clear()
            await anyio.to_thread.run_sync(fh.write, bytes(buf))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


@router.post(
    "/images/import",
    status_code=201,
    response_model=ImageSummary,
    openapi_extra=IMPORT_BODY,
    responses={409: {"description": "Already in the store."}, 422: {"description": "Refused."}},
)
async def import_bundle(request: Request, state: StateDep) -> ImageSummary:
    """Add the image in an uploaded bundle, after checking every member and checksum."""
    path = await _receive(request, state.store)
    try:
        meta = await anyio.to_thread.run_sync(import_image, state.store, path)
    finally:
        path.unlink(missing_ok=True)
    return ImageSummary.of_metadata(meta, state.store.active_id())
