"""Image bundles for /api/v1/images and the console alike: the store's side of an export
(a temporary bundle under tmp/) and of an import (a received bundle into the store).
The HTTP sides are master.download (the response that removes its file) and
master.upload (the body streamed to tmp/, then import_received).

Bundles live in `<data-dir>/tmp` (the store's filesystem, not the system's /tmp, which may
be small or a tmpfs) only while a request needs them. Filesystem work that can be big
(unpacking, unlinking a bundle) runs in a worker thread, never on the event loop that
answers discovery and /healthz. Import checks happen in store.bundle: a refused bundle
raises (422 naming the member) and the store is left as it was.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio.to_thread

from livestrap.master.artifacts import valid_image_id
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


@dataclass(frozen=True)
class ExportedBundle:
    """A bundle under tmp/ for one download: the caller removes `path` when it is sent."""

    path: Path
    filename: str
    media_type: str


def resolve_image(store: ImageStore, ref: str) -> str:
    """An image id or a unique prefix of one -> the id (404 none, 409 several)."""
    return store.resolve(valid_image_id(ref))


def export_to_tmp(store: ImageStore, ref: str, compression: Compression) -> ExportedBundle:
    """The image `ref` names, written as a bundle to a new private file under tmp/
    (leftovers of killed requests are swept first)."""
    image_id = resolve_image(store, ref)
    store.get(image_id)  # 404 before any temp file exists
    store.clean_stale_tmp()
    fd, path = tmpdirs.make_file(store.tmp_dir, "export", SUFFIX[compression])
    os.close(fd)  # export_image writes its own file beside it and renames it over this one
    try:
        export_image(store, image_id, path, compression)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return ExportedBundle(path, f"{image_id}{SUFFIX[compression]}", MEDIA_TYPE[compression])


async def import_received(store: ImageStore, path: Path, cap: int) -> ImageMetadata:
    """Add the image in the bundle at `path` (under tmp/), which is removed either way."""
    try:
        return await anyio.to_thread.run_sync(lambda: import_image(store, path, max_bytes=cap))
    finally:  # a bundle may be gigabytes: unlinked off the event loop
        await anyio.to_thread.run_sync(partial(path.unlink, missing_ok=True))
