"""Serving image files: validated lookup, conditional and single-range requests, and a
FileResponse that reports how many body bytes it sent (for the boot timeline).

Starlette's FileResponse does the sending (ranges included). The decisions — which range,
304 or 416 — are taken here first, so the boot route knows what will be sent before it
records an event, and the response is told exactly that range (the client's Range header
is replaced by the canonical one), so both always agree.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

import anyio
import anyio.to_thread
from fastapi import Response
from fastapi.responses import FileResponse
from starlette.datastructures import Headers
from starlette.types import Message, Receive, Scope, Send

from livestrap.errors import ImageNotFound, StoreError
from livestrap.master.verified import VERIFIED
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ARTIFACTS, METADATA, ImageMetadata, check_image_id

log = logging.getLogger(__name__)

OCTET_STREAM = "application/octet-stream"
_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)\Z")

ByteRange = tuple[int, int]  # inclusive first and last byte
_HUGE = 1 << 63  # past the end of any file


class RangeNotSatisfiable(Exception):
    """The single range asked for lies wholly outside the file."""


def valid_image_id(image_id: str) -> str:
    """An id usable as a directory name; anything else is simply not found (404)."""
    try:
        return check_image_id(image_id)
    except StoreError:
        raise ImageNotFound(f"no image {image_id!r} (not a valid image id)") from None


@dataclass(frozen=True)
class ArtifactFile:
    """One artifact of a stored image, with the validators clients revalidate against."""

    image_id: str
    name: str
    path: Path
    stat: os.stat_result
    etag: str  # the artifact's sha256, quoted: the same bytes always have the same tag

    @property
    def size(self) -> int:
        return self.stat.st_size

    @property
    def last_modified(self) -> str:
        return formatdate(self.stat.st_mtime, usegmt=True)

    def headers(self) -> dict[str, str]:
        return {"etag": self.etag, "last-modified": self.last_modified, "accept-ranges": "bytes"}


_META_CACHE: dict[Path, tuple[tuple[int, int, int], ImageMetadata]] = {}
_META_CACHE_MAX = 64


def image_metadata(store: ImageStore, image_id: str) -> ImageMetadata:
    """An image's metadata, parsed once per version of its metadata.yaml: parsing takes
    ~10 ms (YAML with the whole package list) and every boot asks for it four times,
    which made the master the bottleneck of nginx in front when many nodes boot."""
    path = store.path(valid_image_id(image_id)) / METADATA
    try:
        st = os.stat(path)
    except OSError:
        return store.get(image_id)  # raises the store's own error
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    cached = _META_CACHE.get(path)
    if cached is not None and cached[0] == key:
        return cached[1]
    meta = store.get(image_id)
    if len(_META_CACHE) >= _META_CACHE_MAX:
        _META_CACHE.clear()
    _META_CACHE[path] = (key, meta)
    return meta


def find_artifact(store: ImageStore, image_id: str, name: str) -> ArtifactFile:
    """The file for images/<id>/<name>; ids and names are checked, never joined blindly."""
    known = {n: n for n in ARTIFACTS}.get(name)
    if known is None:
        raise ImageNotFound(f"no artifact {name!r}: one of {', '.join(ARTIFACTS)}")
    meta = image_metadata(store, image_id)
    path = store.path(image_id) / known
    try:
        st = os.lstat(path)
    except OSError:
        raise ImageNotFound(f"image {image_id} has no {known}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ImageNotFound(f"image {image_id} has no regular file {known}")
    sha256 = meta.artifacts[known].sha256
    VERIFIED.check(path, st, sha256, f"image {image_id}'s {known}")
    return ArtifactFile(image_id, known, path, st, f'"{sha256}"')


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match uses the weak comparison: W/"x" matches "x"; `*` matches anything."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    return any(t == "*" or t.removeprefix("W/") == etag for t in tags)


def _position(digits: str) -> int:
    """A byte position; one of more than 18 digits is past the end of any file (and
    Python's int() refuses more than 4,300 digits)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _HUGE


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range asked for; None means send the whole file.

    Following RFC 9110, a Range header we do not understand (other units, several ranges,
    a malformed or backwards range) is ignored rather than refused.
    """
    if not header:
        return None
    m = _RANGE_RE.match(header.replace(" ", "").lower())
    if not m or m.group(1) == m.group(2) == "":
        return None
    first, last = m.group(1), m.group(2)
    if first == "":  # suffix: the last n bytes
        n = _position(last)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(0, size - n), size - 1
    start = _position(first)
    if last != "" and _position(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return start, size - 1 if last == "" else min(_position(last), size - 1)


def choose_range(headers: Headers, art: ArtifactFile) -> ByteRange | None:
    """The range to send, honouring If-Range (a stale validator means the whole file)."""
    if_range = headers.get("if-range")
    if if_range and if_range not in (art.etag, art.last_modified):
        return None
    return parse_range(headers.get("range"), art.size)


def not_modified(art: ArtifactFile) -> Response:
    return Response(status_code=304, headers=art.headers())


def range_not_satisfiable(art: ArtifactFile) -> Response:
    headers = {**art.headers(), "content-range": f"bytes */{art.size}"}
    return Response(status_code=416, headers=headers)


SentCallback = Callable[[int, float], None]


class ArtifactResponse(FileResponse):
    """FileResponse for one artifact and one pre-chosen range, reporting the bytes it sent.

    `on_sent(bytes, seconds)` runs in a worker thread once the body is done — completely
    sent or cut short by the client — so a slow event write never holds the transfer.
    """

    # Starlette reads 64 KiB per chunk; every chunk costs a worker-thread hop and a few
    # event-loop rounds. 1 MiB chunks served ~2.5x the MB/s to 50 clients on 2 cores
    # (bench/serve_bench.py), for at most 1 MiB in flight per download.
    chunk_size = 1 << 20

    def __init__(
        self,
        art: ArtifactFile,
        byte_range: ByteRange | None = None,
        on_sent: SentCallback | None = None,
    ) -> None:
        super().__init__(
            art.path, headers=art.headers(), media_type=OCTET_STREAM, stat_result=art.stat
        )
        self.byte_range = byte_range
        self.on_sent = on_sent

    def _scope_for_range(self, scope: Scope) -> Scope:
        """Replace the client's Range/If-Range by the decision already taken."""
        drop = (b"range", b"if-range")
        headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in drop]
        if self.byte_range is not None:
            first, last = self.byte_range
            headers.append((b"range", f"bytes={first}-{last}".encode()))
        # pathsend would bypass the byte count; plain body messages are counted
        extensions = dict(scope.get("extensions") or {})
        extensions.pop("http.response.pathsend", None)
        return {**scope, "headers": headers, "extensions": extensions}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0
        started = time.monotonic()

        async def counting_send(message: Message) -> None:
            nonlocal sent
            if message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await super().__call__(self._scope_for_range(scope), receive, counting_send)
        finally:
            if self.on_sent is not None:
                seconds = time.monotonic() - started
                with anyio.CancelScope(shield=True):
                    await anyio.to_thread.run_sync(self._report, sent, seconds)

    def _report(self, sent: int, seconds: float) -> None:
        assert self.on_sent is not None
        try:
            self.on_sent(sent, seconds)
        except Exception:  # the transfer is over; losing one event must not raise here
            log.exception("could not record the end of a download of %s", self.path)
