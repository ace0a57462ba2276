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


def _status(store: ImageStore, body: bytes, ctype: str) -> tuple[int, str]:
    with pytest.raises(HTTPException) as err:
        _receive(store, body, ctype)
    return err.value.status_code, str(err.value.detail)


def test_malformed_multipart_is_422_and_leaves_nothing(tmp_path: Path) -> None:
    """python-multipart's parse error was uncaught: a 500."""
    store = ImageStore(tmp_path / "data")
    body = b"--xyz\r\nContent-Disposition form-data\r\n\r\nzzz\r\n--xyz--\r\n"  # no ':'
    code, detail = _status(store, body, "multipart/form-data; boundary=xyz")
    assert (code, "not a well-formed multipart upload" in detail) == (422, True)
    assert list(store.tmp_dir.iterdir()) == []


def test_overlong_boundary_is_422(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    code, _ = _status(store, b"x", "multipart/form-data; boundary=" + "b" * 300)
    assert code == 422
    assert list(store.tmp_dir.iterdir()) == []


@pytest.mark.parametrize("cut", [100, 3 << 20, -10])
def test_multipart_cut_off_before_its_closing_boundary_is_422(tmp_path: Path, cut: int) -> None:
    """A truncated upload was taken as a complete bundle (finalize never called)."""
    store = ImageStore(tmp_path / "data")
    body, ctype = _multipart([("file", BUNDLE)])
    code, detail = _status(store, body[:cut], ctype)
    assert code == 422
    assert "closing boundary" in detail
    assert list(store.tmp_dir.iterdir()) == []


def test_stale_temp_trees_are_erased_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Erasing a stale tree of gigabytes on the event loop stalled discovery and /healthz."""
    import threading

    store = ImageStore(tmp_path / "data")
    threads: list[int] = []

    def clean() -> list[str]:
        threads.append(threading.get_ident())
        return []

    monkeypatch.setattr(store, "clean_stale_tmp", clean)
    _receive(store, b"bundle", "application/octet-stream").unlink()
    assert threads and threads[0] != threading.get_ident()  # anyio.run runs the loop here
