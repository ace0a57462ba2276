"""Downloads of temporary files (image bundles): the response removes its file when done,
for /api/v1/images/{id}/export and the console's export alike."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio.to_thread
from fastapi.responses import FileResponse
from starlette.types import Receive, Scope, Send

from livestrap.master.services.bundles import export_to_tmp
from livestrap.store.bundle import Compression
from livestrap.store.images import ImageStore


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


def bundle_download(store: ImageStore, ref: str, compression: Compression) -> TempFileResponse:
    """The image `ref` names as a bundle download, named `<id><suffix>`."""
    bundle = export_to_tmp(store, ref, compression)
    return TempFileResponse(bundle.path, media_type=bundle.media_type, filename=bundle.filename)
