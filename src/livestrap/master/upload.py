"""Stream an image bundle from a request into `<data-dir>/tmp/`, never the system /tmp.

Starlette's `request.form()` spools a multipart upload into a SpooledTemporaryFile (the
system /tmp, which may be RAM) before the handler sees a byte. Here the raw body, or the
`file` part of a multipart body (parsed as it arrives with python-multipart), goes
straight to a file named by store.tmpdirs, bounded by the import limit and free space.
A multipart body python-multipart cannot parse, or one that ends before its closing
boundary (a cut-off upload), is refused (422), never taken as a complete bundle.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio.to_thread
from fastapi import HTTPException, Request
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from livestrap.master.config import IMPORT_FRAMING_BYTES
from livestrap.master.services.bundles import import_received
from livestrap.store import tmpdirs
from livestrap.store.images import ImageStore
from livestrap.store.limits import check_free_space
from livestrap.store.manifest import CHUNK, ImageMetadata

FIELD = b"file"


class _FilePart:
    """Collects the bytes of the multipart part named `field` (the first one), drops the rest."""

    def __init__(self, field: bytes = FIELD) -> None:
        self.wanted = field
        self.out = bytearray()
        self.found = False
        self.complete = False  # the closing boundary was seen
        self._in_file = False
        self._field = b""
        self._value = b""
        self._name: bytes | None = None

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._add("_field", d[s:e]),
            "on_header_value": lambda d, s, e: self._add("_value", d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_done,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_end": self._finished,
        }

    def _add(self, attr: str, data: bytes) -> None:
        setattr(self, attr, getattr(self, attr) + data)

    def _begin(self) -> None:
        self._name, self._in_file = None, False

    def _header_end(self) -> None:
        if self._field.lower() == b"content-disposition":
            _, params = parse_options_header(self._value)
            self._name = params.get(b"name")
        self._field = self._value = b""

    def _headers_done(self) -> None:
        self._in_file = self._name == self.wanted and not self.found
        self.found = self.found or self._in_file

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self.out += data[start:end]

    def _end(self) -> None:
        self._in_file = False

    def _finished(self) -> None:
        self.complete = True


def _too_large(cap: int) -> HTTPException:
    return HTTPException(
        413, f"bundle is larger than the import limit of {cap} bytes (LIVESTRAP_MAX_IMPORT_BYTES)"
    )


def _bad_multipart(reason: str) -> HTTPException:
    return HTTPException(422, f"not a well-formed multipart upload: {reason}")


def _parser(boundary: bytes | None, part: _FilePart) -> MultipartParser:
    if not boundary:
        raise _bad_multipart("no boundary in its Content-Type")
    try:
        return MultipartParser(boundary, part.callbacks())  # type: ignore[arg-type]
    except FormParserError as err:  # e.g. an overlong boundary
        raise _bad_multipart(str(err)) from None


async def receive_bundle(
    request: Request, store: ImageStore, cap: int, field: bytes = FIELD
) -> Path:
    """The bundle in the request, as a file under tmp/ (the caller removes it); a multipart
    body carries it in the part named `field` (the API's `file`, the console's `bundle`)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap + IMPORT_FRAMING_BYTES:
        raise _too_large(cap)
    # a stale tree may be gigabytes: erased off the event loop (discovery, /healthz go on)
    await anyio.to_thread.run_sync(store.clean_stale_tmp)
    store.tmp_dir.mkdir(mode=tmpdirs.TMP_DIR_MODE, parents=True, exist_ok=True)
    if declared.isdigit():
        check_free_space(store.tmp_dir, int(declared))
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    part = _FilePart(field) if ctype == b"multipart/form-data" else None
    parser = _parser(params.get(b"boundary"), part) if part is not None else None
    fd, path = tmpdirs.make_file(store.tmp_dir, "upload", ".bundle")
    try:
        with os.fdopen(fd, "wb") as fh:
            buf, size = bytearray(), 0
            async for chunk in request.stream():
                if parser is not None and part is not None:
                    try:
                        parser.write(chunk)
                    except FormParserError as err:
                        raise _bad_multipart(str(err)) from None
                    data, part.out = bytes(part.out), bytearray()
                else:
                    data = chunk
                size += len(data)
                if size > cap:
                    raise _too_large(cap)
                buf += data
                if len(buf) >= CHUNK:
                    await anyio.to_thread.run_sync(fh.write, bytes(buf))
                    buf.clear()
            await anyio.to_thread.run_sync(fh.write, bytes(buf))
        if parser is not None and part is not None:
            parser.finalize()
            if not part.complete:
                raise _bad_multipart("it ends before its closing boundary (cut off?)")
            if not part.found:
                raise HTTPException(
                    422, f"multipart upload needs the bundle in a `{field.decode()}` field"
                )
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


async def import_upload(
    request: Request, store: ImageStore, cap: int, field: bytes = FIELD
) -> ImageMetadata:
    """Add the image in the request's bundle: what POST /api/v1/images/import and the
    console's import both do (the same checks, the same refusals)."""
    return await import_received(store, await receive_bundle(request, store, cap, field), cap)
