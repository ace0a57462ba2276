"""GET /api/v1/images/{id}/sbom and POST /api/v1/images/{id}/verify: admin only, a 404
that says why for an image without an SBOM, a tampered artifact reported by name."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from asgi import bearer, call, master_app
from livestrap.master.state import AppState
from livestrap.store.manifest import SBOM, SBOM_MEDIA_TYPE

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from store_helpers import write_image_dir

pytestmark = pytest.mark.integration

SBOM_BYTES = b'{"bomFormat": "CycloneDX", "specVersion": "1.5"}\n'


@pytest.fixture
def master(tmp_path: Path) -> Iterator[tuple[FastAPI, AppState]]:
    data = tmp_path / "data"
    write_image_dir(data / "images", "new-1", sbom=SBOM_BYTES)
    write_image_dir(data / "images", "old-1")
    with master_app(data) as made:
        yield made


def test_admin_token_required(master: tuple[FastAPI, AppState]) -> None:
    app, state = master
    assert call(app, "GET", "/api/v1/images/new-1/sbom").status == 401
    assert call(app, "POST", "/api/v1/images/new-1/verify").status == 401
    wrong = bearer(state.discovery_token)
    assert call(app, "GET", "/api/v1/images/new-1/sbom", headers=wrong).status in (401, 403)


def test_sbom(master: tuple[FastAPI, AppState]) -> None:
    app, state = master
    admin = bearer(state.admin_token)
    answer = call(app, "GET", "/api/v1/images/new/sbom", headers=admin)  # a prefix works
    assert answer.status == 200
    assert answer.body == SBOM_BYTES
    assert answer.headers["content-type"] == SBOM_MEDIA_TYPE
    answer = call(app, "GET", "/api/v1/images/old-1/sbom", headers=admin)
    assert answer.status == 404
    assert answer.json()["detail"].startswith("image old-1 has no SBOM (built before")
    assert call(app, "GET", "/api/v1/images/nope/sbom", headers=admin).status == 404
    show = call(app, "GET", "/api/v1/images/new-1", headers=admin).json()
    assert set(show["artifacts"]) == {"vmlinuz", "initrd.img", "root.squashfs", SBOM}
    (state.store.path("new-1") / SBOM).write_bytes(SBOM_BYTES.upper())
    answer = call(app, "GET", "/api/v1/images/new-1/sbom", headers=admin)
    assert answer.status == 409
    assert "does not match its sha256" in answer.json()["detail"]


def test_verify(master: tuple[FastAPI, AppState]) -> None:
    app, state = master
    admin = bearer(state.admin_token)
    answer = call(app, "POST", "/api/v1/images/old-1/verify", headers=admin)
    assert answer.json() == {
        "id": "old-1",
        "ok": True,
        "files": {"vmlinuz": "ok", "initrd.img": "ok", "root.squashfs": "ok"},
    }
    (state.store.path("new-1") / "root.squashfs").write_bytes(b"x")
    (state.store.path("new-1") / "vmlinuz").unlink()
    answer = call(app, "POST", "/api/v1/images/new-1/verify", headers=admin)
    assert answer.status == 200
    assert answer.json() == {
        "id": "new-1",
        "ok": False,
        "files": {"vmlinuz": "missing", "initrd.img": "ok", "root.squashfs": "mismatch",
                  SBOM: "ok"},
    }  # fmt: skip
