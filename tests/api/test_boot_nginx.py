"""nginx in front of the master: the X-Accel-Redirect hand-off, the end-of-transfer
notice (POST /boot/nginx/sent), and the whole chain through a real nginx if installed."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import open_to_nginx, require_commands
from masterproc import Master, free_port, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

from store_helpers import artifact_bytes, write_image_dir

from livestrap.master.models import BootEvent
from livestrap.netboot.nginx import NginxOptions, render_nginx_config

pytestmark = pytest.mark.integration

IMAGE = "img-n"
ACCEL = {"X-Livestrap-Accel": "/_livestrap/images/"}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("nginx") / "data"
    write_image_dir(data / "images", IMAGE)
    with master_process(data) as m:
        yield m


@pytest.fixture
def client(master: Master) -> Iterator[httpx.Client]:
    with master.anonymous() as c:
        yield c


def events(master: Master, mac: str, count: int) -> list[BootEvent]:
    """The MAC's events once there are `count`, in timeline order: the start of a
    hand-off is written after the answer (stamped with its arrival), the end after the
    body, so for small files they may be written in either order."""
    db = master.database()
    deadline = time.monotonic() + 5
    try:
        while True:
            with Session(db.engine) as session:
                query = (select(BootEvent).where(BootEvent.mac == mac)
                         .order_by(BootEvent.at, BootEvent.id))  # as the timeline  # fmt: skip
                found = list(session.scalars(query))
            if len(found) >= count or time.monotonic() > deadline:
                return found
            time.sleep(0.05)
    finally:
        db.dispose()


def sent(client: httpx.Client, uri: str, sent_bytes: int, **headers: str) -> httpx.Response:
    return client.post("/boot/nginx/sent", headers={
        "X-Original-URI": uri, "X-Bytes-Sent": str(sent_bytes), "X-Request-Time": "0.25",
        "X-Request-Completion": "OK", **headers})  # fmt: skip


def test_hand_off_records_the_start(master: Master, client: httpx.Client) -> None:
    mac = "52:54:00:00:00:01"
    r = client.get(f"/boot/images/{IMAGE}/vmlinuz", params={"mac": mac}, headers=ACCEL)
    assert r.status_code == 200
    assert r.content == b""
    assert r.headers["x-accel-redirect"] == f"/_livestrap/images/{IMAGE}/vmlinuz"
    squashfs = f"/boot/m/52-54-00-00-00-01/images/{IMAGE}/root.squashfs"
    r = client.get(squashfs, headers={**ACCEL, "Range": "bytes=0-9"})
    assert r.headers["x-accel-redirect"] == f"/_livestrap/images/{IMAGE}/root.squashfs"
    assert client.head(squashfs, headers=ACCEL).status_code == 200  # HEAD: no event
    r = client.get(squashfs, headers={**ACCEL, "Range": "bytes=999999-"})  # nginx says 416
    assert r.headers["x-accel-redirect"].endswith("/root.squashfs")
    found = events(master, mac, 2)
    assert [(e.kind, e.detail) for e in found] == [
        ("kernel", {}),
        ("squashfs-start", {"range": "bytes=0-9"}),
    ]


def test_hand_off_still_refuses_unknown_files(client: httpx.Client) -> None:
    assert client.get("/boot/images/nope/vmlinuz", headers=ACCEL).status_code == 404
    r = client.get(f"/boot/images/{IMAGE}/metadata.yaml", headers=ACCEL)
    assert r.status_code == 404
    assert "x-accel-redirect" not in r.headers


@pytest.mark.parametrize("prefix", ["/x/../y/", "no-slash", "/a b/"])
def test_bad_prefix_means_the_master_sends_the_file(client: httpx.Client, prefix: str) -> None:
    r = client.get(f"/boot/images/{IMAGE}/vmlinuz", headers={"X-Livestrap-Accel": prefix})
    assert r.content == artifact_bytes(IMAGE)["vmlinuz"]
    assert "x-accel-redirect" not in r.headers


def test_sent_records_the_end(master: Master, client: httpx.Client) -> None:
    size = len(artifact_bytes(IMAGE)["root.squashfs"])
    uri = f"/boot/m/52-54-00-00-00-02/images/{IMAGE}/root.squashfs"
    assert sent(client, uri, size).status_code == 204
    assert sent(client, uri, 10, Range="bytes=0-9").status_code == 204
    assert sent(client, uri, 3, **{"X-Request-Completion": ""}).status_code == 204
    for refused in ("429", "404", "416"):  # answered, but no download: nothing written
        assert sent(client, uri, 180, **{"X-Original-Status": refused}).status_code == 204
    assert sent(client, uri, 1, **{"X-Original-Status": "2000"}).status_code == 422
    ends = [e.detail for e in events(master, "52:54:00:00:00:02", 3)]
    assert ends == [
        {"bytes": size, "seconds": 0.25, "complete": True, "via": "nginx"},
        {"range": "bytes=0-9", "bytes": 10, "seconds": 0.25, "complete": True, "via": "nginx"},
        {"bytes": 3, "seconds": 0.25, "complete": False, "via": "nginx"},
    ]
    # kernel and initrd have no end event
    kernel = f"/boot/images/{IMAGE}/vmlinuz?mac=52:54:00:00:00:03"
    assert sent(client, kernel, 10).status_code == 204
    assert events(master, "52:54:00:00:00:03", 1) == []


@pytest.mark.parametrize(
    ("uri", "status"),
    [("/boot/ipxe", 404), ("/boot/images/nope/root.squashfs", 404), ("/etc/passwd", 404)],
)
def test_sent_refuses_other_urls(client: httpx.Client, uri: str, status: int) -> None:
    assert sent(client, uri, 1).status_code == status


@pytest.mark.security
def test_sent_is_taken_from_nginx_on_this_host_only(tmp_path: Path) -> None:
    """Review: anyone could forge squashfs-end events, at any speed."""
    write_image_dir(tmp_path / "data" / "images", IMAGE)
    env = {"LIVESTRAP_BOOT_BURST": "20", "LIVESTRAP_BOOT_RATE": "0.1"}
    with master_process(tmp_path / "data", env=env) as master:
        uri = f"/boot/m/52-54-00-00-00-05/images/{IMAGE}/root.squashfs"
        far = httpx.Client(base_url=master.url, timeout=10,
                           transport=httpx.HTTPTransport(local_address="127.0.0.5"))  # fmt: skip
        with far, master.anonymous() as near:
            assert sent(far, uri, 10).status_code == 403
            # as through nginx's /boot/ location: the client's address in X-Forwarded-For
            assert sent(near, uri, 10, **{"X-Forwarded-For": "127.0.0.1"}).status_code == 403
            statuses = [sent(far, uri, 10).status_code for _ in range(25)]
            assert set(statuses[:15]) == {403} and statuses[-1] == 429  # the sender's budget
            assert sent(near, uri, 10, **{"X-Livestrap-Client": "10.0.2.15"}).status_code == 204
        found = events(master, "52:54:00:00:00:05", 1)
    assert [(e.kind, e.ip) for e in found] == [("squashfs-end", "10.0.2.15")]


def test_sent_needs_its_headers(client: httpx.Client) -> None:
    assert client.post("/boot/nginx/sent").status_code == 422
    uri = f"/boot/images/{IMAGE}/root.squashfs"
    assert sent(client, uri, -1).status_code == 422


def test_through_real_nginx(master: Master, tmp_path: Path) -> None:
    """The rendered config in a real nginx: files come from nginx, the timeline is whole."""
    require_commands("nginx")
    from nginxproc import nginx_process

    tmp_path.chmod(0o755)  # nginx's workers run as nobody
    port = free_port()
    images = (master.data_dir / "images").resolve()
    open_to_nginx(images)
    opts = NginxOptions(str(images), master=master.url, listen=f"127.0.0.1:{port}")
    files = artifact_bytes(IMAGE)
    mac = "52:54:00:00:00:04"
    with nginx_process(tmp_path / "nginx", render_nginx_config(opts), port) as nginx:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            r = c.get(f"/boot/images/{IMAGE}/vmlinuz", params={"mac": mac})
            assert r.content == files["vmlinuz"]
            assert r.headers["server"].startswith("nginx")
            squashfs = f"/boot/m/52-54-00-00-00-04/images/{IMAGE}/root.squashfs"
            assert c.get(squashfs).content == files["root.squashfs"]
            r = c.get(squashfs, headers={"Range": "bytes=0-9"})
            assert (r.status_code, r.content) == (206, files["root.squashfs"][:10])
            assert c.get("/boot/images/nope/vmlinuz").status_code == 404
            assert c.get("/healthz").status_code == 200  # everything else: the master
            assert c.get(f"/_livestrap/images/{IMAGE}/vmlinuz").status_code == 404  # internal
            forged = c.post("/boot/nginx/sent", headers={"X-Original-URI": squashfs,
                                                         "X-Bytes-Sent": "1"})  # fmt: skip
            assert forged.status_code == 403  # through nginx's /boot/: not nginx's notice
        found = events(master, mac, 5)
        assert "[error]" not in nginx.error_log.read_text()
    assert [e.kind for e in found] == [
        "kernel", "squashfs-start", "squashfs-end", "squashfs-start", "squashfs-end"
    ]  # fmt: skip
    assert {e.ip for e in found} == {"127.0.0.1"}  # the node's address, from nginx
    size = len(files["root.squashfs"])
    assert found[2].detail == {**found[2].detail, "bytes": size, "complete": True, "via": "nginx"}
    assert found[4].detail == {**found[4].detail, "range": "bytes=0-9", "bytes": 10,
                               "complete": True}  # fmt: skip
