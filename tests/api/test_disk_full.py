"""A full disk is a 507 with a JSON detail (not a plain-text 500) on discovery, image
delete and import, and the master works again as soon as there is room.

The full disk is faked in-process: SQLite really refuses to grow (PRAGMA max_page_count,
so the error is SQLite's own SQLITE_FULL), and writes or directories under the data dir
fail with ENOSPC, as on a full filesystem.
"""

from __future__ import annotations

import errno
import io
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.orm import Session

from asgi import Answer, bearer, call, master_app
from livestrap.master.errors import DISK_FULL_DETAIL
from livestrap.master.state import AppState
from livestrap.store.bundle import export_image

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from store_helpers import image_members, snapshot, tmp_entries, write_image_dir, write_tar

pytestmark = [pytest.mark.integration, pytest.mark.security]

URL = "/api/v1/discovery"
JSON = {"content-type": "application/json"}


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[FastAPI, AppState]]:
    data = tmp_path / "data"
    write_image_dir(data / "images", "img-1")
    write_image_dir(data / "images", "img-2")
    with master_app(data) as made:
        yield made


def assert_507(answer: Answer) -> None:
    assert answer.status == 507, answer.body
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"detail": DISK_FULL_DETAIL}


def no_space(what: object) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(what))


class FullFile:
    """A file open for writing on a full disk."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def write(self, data: bytes) -> int:
        raise no_space(getattr(self._real, "name", "?"))

    def __enter__(self) -> FullFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self._real.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def fill_disk(monkeypatch: pytest.MonkeyPatch, under: Path, *, fds: bool) -> None:
    """Writes to files under `under` (and to any fd opened for writing, when `fds`) fail."""
    real_open = io.open

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        handle = real_open(file, mode, *args, **kwargs)
        writing = any(c in mode for c in "wxa+")
        inside = (fds and isinstance(file, int)) or (
            isinstance(file, str | os.PathLike) and str(file).startswith(str(under))
        )
        return FullFile(handle) if writing and inside else handle

    monkeypatch.setattr(io, "open", full_open)


def report() -> bytes:
    mac = "52:54:00:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])
    facts = {"system": {"uuid": str(uuid.uuid4())}, "nics": [{"mac": mac}], "blob": "x" * 200_000}
    return json.dumps({"boot_mac": mac, "facts": facts, "uptime_s": 5}).encode()


def test_discovery_on_a_full_database(
    master: tuple[FastAPI, AppState], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, state = master
    real_apply = state.reports.apply
    full = True

    def apply(session: Session, rep: Any, ip: str | None) -> Any:
        pages = session.execute(text("PRAGMA page_count")).scalar()
        limit = pages if full else 1 << 30
        session.execute(text(f"PRAGMA max_page_count = {limit}"))
        return real_apply(session, rep, ip)

    monkeypatch.setattr(state.reports, "apply", apply)
    headers = {**JSON, **bearer(state.discovery_token)}
    body = report()
    assert_507(call(app, "POST", URL, headers=headers, chunks=[body]))
    full = False  # space was freed
    again = call(app, "POST", URL, headers=headers, chunks=[body])
    assert again.status == 201, again.body
    listed = call(app, "GET", "/api/v1/nodes", headers=bearer(state.admin_token))
    assert listed.status == 200 and len(listed.json()) == 1


def test_image_delete_on_a_full_disk(
    master: tuple[FastAPI, AppState], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, state = master
    real_mkdir = os.mkdir
    tmp_dir = str(state.store.tmp_dir)

    def full_mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        if str(path).startswith(tmp_dir):
            raise no_space(path)
        real_mkdir(path, *args, **kwargs)

    state.store.tmp_dir.mkdir(parents=True, exist_ok=True)
    monkeypatch.setattr(os, "mkdir", full_mkdir)
    admin = bearer(state.admin_token)
    assert_507(call(app, "DELETE", "/api/v1/images/img-2", headers=admin))
    assert call(app, "GET", "/api/v1/images/img-2", headers=admin).status == 200
    monkeypatch.undo()
    assert call(app, "DELETE", "/api/v1/images/img-2", headers=admin).status == 204


@pytest.mark.parametrize("where", ["upload", "extract"])
def test_import_on_a_full_disk(
    master: tuple[FastAPI, AppState],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    where: str,
) -> None:
    """`upload`: spooling the request body fails; `extract`: writing the image does (the
    store turns that into "cannot write ...", raised from the ENOSPC)."""
    app, state = master
    bundle = write_tar(tmp_path / "b.tar", image_members("img-new")).read_bytes()
    admin = bearer(state.admin_token)
    before = snapshot(state.store)
    fill_disk(monkeypatch, state.store.data_dir, fds=where == "upload")
    assert_507(call(app, "POST", "/api/v1/images/import", headers=admin, chunks=[bundle]))
    monkeypatch.undo()
    assert snapshot(state.store) == before
    assert tmp_entries(state.store) == []
    imported = call(app, "POST", "/api/v1/images/import", headers=admin, chunks=[bundle])
    assert imported.status == 201, imported.body


def test_export_on_a_full_disk_is_507_too(
    master: tuple[FastAPI, AppState], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    app, state = master
    fill_disk(monkeypatch, state.store.data_dir, fds=True)
    answer = call(app, "GET", "/api/v1/images/img-1/export", headers=bearer(state.admin_token))
    assert_507(answer)
    monkeypatch.undo()
    export_image(state.store, "img-1", tmp_path / "ok.tar.zst")  # and works again
