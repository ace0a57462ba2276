"""/api/v1/images against a real master, after the issue-11 review: malformed or cut-off
multipart imports are 422, the multipart framing allowance applies, an export the client
walks away from leaves nothing in tmp/, and images stored under older rules stay listed
but are never activated when the master cannot boot them."""

from __future__ import annotations

import hashlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from asgi import bearer, call, master_app
from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import artifact_bytes, make_metadata, old_style

from livestrap.master.routes.boot import UNUSABLE
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, Artifact, dump_metadata

pytestmark = [pytest.mark.integration, pytest.mark.security]

CAP = 4 << 20
BIG = "big-1"
BIG_SQUASHFS = 48 << 20  # far more than the loopback socket buffers hold


def _big_image(images: Path) -> None:
    files = artifact_bytes(BIG)
    image_dir = images / BIG
    image_dir.mkdir(parents=True)
    for name, data in files.items():
        (image_dir / name).write_bytes(data)
    squashfs = image_dir / "root.squashfs"
    with squashfs.open("wb") as fh:
        fh.truncate(BIG_SQUASHFS)
    meta = make_metadata(BIG, files)
    digest = hashlib.sha256(bytes(BIG_SQUASHFS)).hexdigest()
    meta.artifacts["root.squashfs"] = Artifact(sha256=digest, size=BIG_SQUASHFS)
    (image_dir / METADATA).write_text(dump_metadata(meta))


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("review") / "data"
    _big_image(data / "images")
    with master_process(data, env={"LIVESTRAP_MAX_IMPORT_BYTES": str(CAP)}) as m:
        yield m


def _tmp(m: Master) -> list[str]:
    tmp = m.data_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def _import(m: Master, body: bytes, ctype: str) -> httpx.Response:
    with m.admin() as c:
        return c.post("/api/v1/images/import", content=body, headers={"content-type": ctype})


def test_malformed_multipart_is_422_json(master: Master) -> None:
    body = b"--xyz\r\nContent-Disposition form-data\r\n\r\nzzz\r\n--xyz--\r\n"
    r = _import(master, body, "multipart/form-data; boundary=xyz")
    assert r.status_code == 422, r.text
    assert "not a well-formed multipart upload" in r.json()["detail"]
    assert _tmp(master) == []


def test_cut_off_multipart_is_422(master: Master) -> None:
    req = httpx.Request("POST", "http://x/", files={"file": ("b.tar", b"\0" * 10240)})
    body = req.read()
    r = _import(master, body[: len(body) - 40], req.headers["content-type"])
    assert r.status_code == 422, r.text
    assert "closing boundary" in r.json()["detail"]
    assert _tmp(master) == []


def test_multipart_bundle_of_exactly_the_limit_passes_the_body_cap(master: Master) -> None:
    """The body cap refused what the upload's own 1 MiB framing allowance was meant for."""
    with master.admin() as c:
        r = c.post("/api/v1/images/import", files={"file": ("b.tar", b"\0" * CAP)})
    assert r.status_code == 422, r.text  # through both caps, then refused as no bundle
    assert "LIVESTRAP_MAX_IMPORT_BYTES" not in r.text
    with master.admin() as c:
        r = c.post("/api/v1/images/import", files={"file": ("b.tar", b"\0" * (CAP + 1))})
    assert r.status_code == 413, r.text
    assert _tmp(master) == []


def test_export_the_client_walks_away_from_leaves_no_temp_file(master: Master) -> None:
    """A BackgroundTask unlink never ran when the client disconnected mid-download."""
    host, port = master.url.removeprefix("http://").split(":")
    request = (
        f"GET /api/v1/images/{BIG}/export?compression=none HTTP/1.1\r\nHost: {host}\r\n"
        f"Authorization: Bearer {master.admin_token}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(request)
        got = b""
        while len(got) < 256 << 10:
            chunk = sock.recv(65536)
            assert chunk, got[:200]
            got += chunk
        assert got.startswith(b"HTTP/1.1 200")
        assert [n for n in _tmp(master) if n.startswith("export-")]  # still being sent
    deadline = time.monotonic() + 5
    while _tmp(master) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _tmp(master) == []
    with master.admin() as c:  # and the master goes on serving
        assert c.get("/api/v1/images").status_code == 200


def test_export_is_removed_when_send_fails_mid_body(tmp_path: Path) -> None:
    """ASGI 2.4 servers raise from `send` once the client is gone (Starlette then skips
    the response's BackgroundTask): the file must still be removed."""
    data = tmp_path / "data"
    _big_image(data / "images")
    sent: list[str] = []

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message["type"])
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    with master_app(data) as (app, state):
        path = f"/api/v1/images/{BIG}/export"
        scope = {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": "GET", "scheme": "http", "path": path,
            "raw_path": path.encode(), "root_path": "", "query_string": b"compression=none",
            "headers": [(k.encode(), v.encode()) for k, v in bearer(state.admin_token).items()],
            "client": ("127.0.0.1", 40000), "server": ("127.0.0.1", 8080), "state": {},
        }  # fmt: skip

        async def run() -> None:
            with pytest.raises(Exception):  # noqa: B017 (whatever the server makes of it)
                await app(scope, receive, send)

        anyio.run(run)
        assert sent[:2] == ["http.response.start", "http.response.body"]
        assert list(state.store.tmp_dir.iterdir()) == []


def test_an_old_style_active_image_is_listed_and_never_booted(tmp_path: Path) -> None:
    """It vanished from the list (and its metadata was a 500 wherever it was read)."""
    store = ImageStore(tmp_path / "data")
    old_style(store)
    store.active_link.symlink_to("images/old-1")  # active before the upgrade
    with master_process(store.data_dir) as m:
        with m.admin() as c:
            listed = c.get("/api/v1/images")
            shown = c.get("/api/v1/images/old-1")
        with m.anonymous() as c:
            script = c.get("/boot/ipxe", params={"mac": "52:54:00:00:00:01"})
            kernel = c.get("/boot/images/old-1/vmlinuz")
    assert listed.status_code == 200, listed.text
    ((row),) = listed.json()
    assert (row["id"], row["active"], len(row["problems"])) == ("old-1", True, 2)
    assert shown.status_code == 200, shown.text
    assert shown.json()["problems"] == row["problems"]
    assert script.status_code == 200, script.text
    assert UNUSABLE in script.text and "$bar" not in script.text
    assert "chain --replace --autofree" in script.text
    assert kernel.status_code == 200  # its files are still there to export or compare


def test_an_image_the_master_cannot_boot_is_refused_activation(tmp_path: Path) -> None:
    """Review: activating it answered 200 and every node then looped on the retry script."""
    store = ImageStore(tmp_path / "data")
    old_style(store)
    with master_app(store.data_dir) as (app, state):
        answer = call(app, "POST", "/api/v1/images/old-1/activate",
                      headers=bearer(state.admin_token))  # fmt: skip
    assert answer.status == 409, answer.body
    detail = answer.json()["detail"]
    assert "old-1 cannot be activated" in detail and "kernel_cmdline: invalid" in detail
    assert store.active_id() is None
