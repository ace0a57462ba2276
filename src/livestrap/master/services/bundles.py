"""Image bundles over HTTP, for /api/v1/images and the console alike: one export that
streams a temporary bundle and removes it afterwards, one import that takes an upload.

Bundles go through `<data-dir>/tmp` (the store's filesystem, not the system's /tmp, which
may be small or a tmpfs; master.upload streams them there, multipart too) and are removed
as soon as the request is done with them, also when the client goes away mid-transfer.
Filesystem work that can be big (erasing, unlinking a bundle) runs in a worker thread,
never on the event loop that answers discovery and /healthz. Import checks happen in
store.bundle: a refused bundle raises (422 naming the member) and the store is left as
it was.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import IO

import anyio.to_thread
from fastapi import Request
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from livestrap.master.artifacts import valid_image_id
from livestrap.master.upload import FIELD, receive_bundle
from livestrap.store import tmpdirs
from livestrap.store.bundle import Compression, export_image, import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata

SUFFIX: dict[str, str] = {"zst": ".tar.zst", "xz": ".tar.xz", "gz": ".tar.gz", "none": ".tar"}
MEDIA_TYPE: dict[str, str] = {
    "zst": "application/zstd",
    "xz": "application/x-xz",
    "gz": "application/gzip",
    "none": "application/x-tar",
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


def resolve_image(store: ImageStore, ref: str) -> str:
    """An image id or a unique prefix of one -> the id (404 none, 409 several)."""
    return store.resolve(valid_image_id(ref))


def _temp_file(store: ImageStore, kind: str, suffix: str) -> tuple[IO[bytes], Path]:
    """A new private file under tmp/; leftovers of killed requests are swept first."""
    store.clean_stale_tmp()
    fd, path = tmpdirs.make_file(store.tmp_dir, kind, suffix)
    return os.fdopen(fd, "wb"), path


def export_download(store: ImageStore, ref: str, compression: Compression) -> TempFileResponse:
    """The image `ref` names as a bundle download, named `<id><suffix>`."""
    image_id = resolve_image(store, ref)
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


async def import_upload(
    request: Request, store: ImageStore, cap: int, field: bytes = FIELD
) -> ImageMetadata:
    """Add the image in the request's bundle (raw body, or the multipart part `field`)."""
    path = await receive_bundle(request, store, cap, field)
    try:
        return await anyio.to_thread.run_sync(lambda: import_image(store, path, max_bytes=cap))
    finally:  # a bundle may be gigabytes: unlinked off the event loop
        await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
