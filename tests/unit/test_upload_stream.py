"""Uploads stream into `<data-dir>/tmp/`, never the system /tmp (issue 11: multipart
imports were spooled whole into a SpooledTemporaryFile first)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi import HTTPException
from starlette.requests import Request

from livestrap.master.upload import receive_bundle
from livestrap.store.images import ImageStore

pytestmark = [pytest.mark.unit, pytest.mark.security]

BUNDLE = os.urandom(3 << 20)  # over SpooledTemporaryFile's 1 MiB: it would roll to disk


def _request(body: bytes, content_type: str) -> Request:
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)] or [b""]
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(b"content-type", content_type.encode())],
    }
    return Request(scope, receive)


def _multipart(fields: list[tuple[str, bytes]]) -> tuple[bytes, str]:
    files = {name: (f"{name}.bin", data) for name, data in fields}
    req = httpx.Request("POST", "http://x/", files=files)
    return req.read(), req.headers["content-type"]


@pytest.fixture
def no_system_tmp(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kw: object) -> None:
        raise AssertionError("the system temp dir was used")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)


def _receive(store: ImageStore, body: bytes, ctype: str, cap: int = 16 << 20) -> Path:
    async def run() -> Path:
        return await receive_bundle(_request(body, ctype), store, cap)

    return anyio.run(run)


@pytest.mark.usefixtures("no_system_tmp")
def test_multipart_file_part_streams_into_data_dir_tmp(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    body, ctype = _multipart([("other", b"ignored"), ("file", BUNDLE)])
    path = _receive(store, body, ctype)
    assert path.parent == store.tmp_dir
    assert path.name.startswith(f"upload-{os.getpid()}.")
    assert path.read_bytes() == BUNDLE


@pytest.mark.usefixtures("no_system_tmp")
def test_raw_body_streams_into_data_dir_tmp(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    path = _receive(store, BUNDLE, "application/octet-stream")
    assert path.read_bytes() == BUNDLE


@pytest.mark.parametrize("multipart", [False, True])
def test_over_the_cap_is_413_and_leaves_nothing(tmp_path: Path, multipart: bool) -> None:
    store = ImageStore(tmp_path / "data")
    body, ctype = (
        _multipart([("file", BUNDLE)]) if multipart else (BUNDLE, "application/octet-stream")
    )
    with pytest.raises(HTTPException) as err:
        _receive(store, body, ctype, cap=1 << 20)
    assert err.value.status_code == 413
    assert list(store.tmp_dir.iterdir()) == []


def test_multipart_without_file_part(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    body, ctype = _multipart([("nope", b"1")])
    with pytest.raises(HTTPException, match="`file`"):
        _receive(store, body, ctype)
    assert list(store.tmp_dir.iterdir()) == []
