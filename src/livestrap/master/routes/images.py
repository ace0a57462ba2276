"""/api/v1/images: the store over HTTP — what `livestrap images ...` does on the master host.

Bundles go through `<data-dir>/tmp` (the store's filesystem, not the system's /tmp, which
may be small or a tmpfs; master.upload streams them there, multipart too) and are removed
as soon as the request is done with them, also when the client goes away mid-transfer.
Filesystem work that can be big (erasing, unlinking a bundle) runs in a worker thread,
never on the event loop that answers discovery and /healthz. Import
checks happen in store.bundle: a refused bundle is a 422 naming the member, and the store
is left as it was.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio.to_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from livestrap.master.artifacts import valid_image_id
from livestrap.master.deps import AdminOnly, StateDep
from livestrap.master.schemas.images import Activated, ImageDetail, ImageDiff, ImageSummary
from livestrap.master.services.images import image_detail, image_diff, image_summary, info_of
from livestrap.master.upload import receive_bundle
from livestrap.store import tmpdirs
from livestrap.store.bundle import Compression, export_image, import_image
from livestrap.store.images import ImageStore

router = APIRouter(dependencies=[AdminOnly], tags=["images"])

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


class TempFileResponse(FileResponse):
    """A FileResponse that removes its (temporary) file once the response is over, sent
    whole or not: a BackgroundTask never runs when the client disconnects mid-download
    (Starlette raises from send), and the running master's own temp files are never stale."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(partial(Path(self.path).unlink, missing_ok=True))


def _temp_file(store: ImageStore, kind: str, suffix: str) -> tuple[IO[bytes], Path]:
    """A new private file under tmp/; leftovers of killed requests are swept first."""
    store.clean_stale_tmp()
    fd, path = tmpdirs.make_file(store.tmp_dir, kind, suffix)
    return os.fdopen(fd, "wb"), path


def _resolve(store: ImageStore, ref: str) -> str:
    """An image id or a unique prefix of one -> the id (404 none, 409 several)."""
    return store.resolve(valid_image_id(ref))


@router.get("/images", response_model=list[ImageSummary])
def list_images(state: StateDep) -> list[ImageSummary]:
    """Every image, oldest first, and which one is active."""
    return [image_summary(info) for info in state.store.list()]


@router.get("/images/{image_id}", response_model=ImageDetail)
def show_image(image_id: str, state: StateDep) -> ImageDetail:
    """An image's full metadata (spec, packages, artifact checksums, ...)."""
    meta = state.store.get(_resolve(state.store, image_id))
    return image_detail(meta, state.store.active_id())


@router.get("/images/{a}/diff/{b}", response_model=ImageDiff)
def diff_images(a: str, b: str, state: StateDep) -> ImageDiff:
    """Packages added, removed and changed in version going from image a to image b."""
    a, b = _resolve(state.store, a), _resolve(state.store, b)
    return image_diff(a, b, state.store.diff(a, b))


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
def export_bundle(
    image_id: str, state: StateDep, compression: Compression = "zst"
) -> TempFileResponse:
    """Download the image as a bundle (tar of its directory) for `images import` elsewhere."""
    store = state.store
    image_id = _resolve(store, image_id)
    store.get(image_id)  # 404 before any temp file exists
    fh, path = _temp_file(store, "export", SUFFIX[compression])
    fh.close()
    try:
        export_image(store, image_id, path, compression)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return TempFileResponse(
        path, media_type=MEDIA_TYPE[compression], filename=f"{image_id}{SUFFIX[compression]}"
    )


@router.post(
    "/images/import",
    status_code=201,
    response_model=ImageSummary,
    openapi_extra=IMPORT_BODY,
    responses={
        409: {"description": "Already in the store."},
        413: {"description": "Over the import limit (LIVESTRAP_MAX_IMPORT_BYTES)."},
        422: {"description": "Refused."},
        507: {"description": "Not enough free space."},
    },
)
async def import_bundle(request: Request, state: StateDep) -> ImageSummary:
    """Add the image in an uploaded bundle, after checking every member and checksum."""
    cap = state.settings.max_import_bytes
    path = await receive_bundle(request, state.store, cap)
    try:
        meta = await anyio.to_thread.run_sync(
            lambda: import_image(state.store, path, max_bytes=cap)
        )
    finally:  # a bundle may be gigabytes: unlinked off the event loop
        await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
    return image_summary(info_of(meta, state.store.active_id()))
