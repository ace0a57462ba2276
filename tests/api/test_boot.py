"""/boot against a real master: the iPXE script, artifact downloads, the boot timeline."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import artifact_bytes, write_image_dir

from livestrap.master.artifacts import RangeNotSatisfiable, parse_range
from livestrap.master.models import BootEvent
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.integration

IMAGE = "img-b"
PUBLIC = "http://10.0.2.100:8080"
MAC = "52:54:00:12:34:56"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """A master without public_url, one image (not activated here)."""
    data = tmp_path_factory.mktemp("boot") / "data"
    write_image_dir(data / "images", IMAGE)
    with master_process(data) as m:
        yield m


@pytest.fixture
def client(master: Master) -> Iterator[httpx.Client]:
    with master.anonymous() as c:
        yield c


def set_active(master: Master, image_id: str | None) -> None:
    store = ImageStore(master.data_dir)
    if image_id is None:
        store.active_link.unlink(missing_ok=True)
    else:
        store.activate(image_id)


def expected_script(base: str, token: str) -> str:
    mac_path = "${net0/mac:hexhyp}"
    return (
        "#!ipxe\n"
        f"kernel {base}/boot/images/{IMAGE}/vmlinuz?mac=${{net0/mac}} initrd=initrd.img boot=live"
        f" fetch={base}/boot/m/{mac_path}/images/{IMAGE}/root.squashfs livestrap.url={base}"
        f" livestrap.token={token} livestrap.image={IMAGE} BOOTIF=01-{mac_path} livestrap.boot=ipxe"
        " console=tty0 console=ttyS0,115200n8 console=ttyS0 || goto failed\n"
        f"initrd --name initrd.img {base}/boot/images/{IMAGE}/initrd.img?mac=${{net0/mac}}"
        " || goto failed\n"
        "boot || goto failed\n"
        ":failed\n"
        f"echo livestrap: booting image {IMAGE} failed; retrying in 30 s\n"
        "sleep 30\n"
        f"chain --replace --autofree {base}/boot/ipxe?mac=${{net0/mac}}\n"
    )


def test_script_with_public_url(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_image_dir(data / "images", IMAGE)
    ImageStore(data).activate(IMAGE)
    with master_process(data, public_url=PUBLIC + "/") as m, m.anonymous() as c:
        r = c.get("/boot/ipxe")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert r.headers["cache-control"] == "no-store"
        assert r.text == expected_script(PUBLIC, m.discovery_token)
        # through a rack cache: the script points back at the cache, not the public URL
        r = c.get("/boot/ipxe", headers={"X-Livestrap-Rack": "http://10.1.0.2:80"})
        assert r.text == expected_script("http://10.1.0.2:80", m.discovery_token)
        r = c.get("/boot/ipxe", headers={"X-Livestrap-Rack": "http://x/ ; shell"})
        assert r.status_code == 400  # never into the script


def test_script_base_from_host_header(master: Master, client: httpx.Client) -> None:
    set_active(master, IMAGE)
    r = client.get("/boot/ipxe")
    assert r.text == expected_script(master.url, master.discovery_token)
    r = client.get("/boot/ipxe", headers={"Host": "boot.example:81"})
    assert r.text == expected_script("http://boot.example:81", master.discovery_token)
    assert "Authorization" not in client.headers  # open, like any netboot server


def test_script_without_active_image_retries(master: Master, client: httpx.Client) -> None:
    set_active(master, None)
    r = client.get("/boot/ipxe", params={"mac": "AA-BB-CC-DD-EE-FF"})
    assert r.status_code == 200
    assert r.text == (
        "#!ipxe\n"
        "echo livestrap: no active image on the master; retrying in 30 s\n"
        "sleep 30\n"
        f"chain --replace --autofree {master.url}/boot/ipxe?mac=${{net0/mac}}\n"
    )


def url(name: str) -> str:
    return f"/boot/images/{IMAGE}/{name}"


def test_head_and_full_get(client: httpx.Client) -> None:
    data = artifact_bytes(IMAGE)["vmlinuz"]
    head = client.head(url("vmlinuz"))
    assert head.status_code == 200
    assert head.content == b""
    assert int(head.headers["content-length"]) == len(data)
    etag = head.headers["etag"]
    assert etag.startswith('"') and len(etag) == 66  # quoted sha256
    assert head.headers["accept-ranges"] == "bytes"
    assert "last-modified" in head.headers
    get = client.get(url("vmlinuz"))
    assert get.status_code == 200
    assert get.content == data
    assert get.headers["etag"] == etag
    assert get.headers["content-type"] == "application/octet-stream"


def test_ranges(client: httpx.Client) -> None:
    data = artifact_bytes(IMAGE)["root.squashfs"]
    r = client.get(url("root.squashfs"), headers={"Range": "bytes=0-9"})
    assert r.status_code == 206
    assert r.content == data[:10]
    assert r.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert r.headers["content-length"] == "10"
    r = client.get(url("root.squashfs"), headers={"Range": "bytes=-5"})
    assert (r.status_code, r.content) == (206, data[-5:])
    r = client.get(url("root.squashfs"), headers={"Range": "bytes=3-"})
    assert (r.status_code, r.content) == (206, data[3:])
    r = client.get(url("root.squashfs"), headers={"Range": "bytes=999999-"})
    assert r.status_code == 416
    assert r.headers["content-range"] == f"bytes */{len(data)}"
    r = client.get(url("root.squashfs"), headers={"Range": "bytes=5-2"})  # ignored: whole file
    assert (r.status_code, r.content) == (200, data)
    r = client.get(url("root.squashfs"), headers={"Range": "bytes=0-3", "If-Range": '"stale"'})
    assert (r.status_code, r.content) == (200, data)


def test_if_none_match(client: httpx.Client) -> None:
    etag = client.head(url("initrd.img")).headers["etag"]
    r = client.get(url("initrd.img"), headers={"If-None-Match": f'"other", {etag}'})
    assert r.status_code == 304
    assert r.content == b""
    assert r.headers["etag"] == etag
    r = client.get(url("initrd.img"), headers={"If-None-Match": '"other"'})
    assert r.status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/boot/images/%2E%2E/vmlinuz",
        "/boot/images/../vmlinuz",
        "/boot/images/..%2Fimages%2Fimg-b/vmlinuz",
        f"/boot/images/{IMAGE}/metadata.yaml",
        f"/boot/images/{IMAGE}/%2E%2E%2F%2E%2E%2Fadmin.token",
        f"/boot/images/{IMAGE}/bzImage",
        "/boot/images/nope/vmlinuz",
        f"/boot/m/{MAC}/images/%2E%2E/root.squashfs",
    ],
)
def test_bad_paths_not_found(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, r.text


def boot_events(master: Master, mac: str) -> list[BootEvent]:
    db = master.database()
    try:
        with Session(db.engine) as session:
            query = select(BootEvent).where(BootEvent.mac == mac).order_by(BootEvent.id)
            return list(session.scalars(query))
    finally:
        db.dispose()


def test_boot_events_recorded(master: Master, client: httpx.Client) -> None:
    set_active(master, IMAGE)
    files = artifact_bytes(IMAGE)
    hyphens = MAC.replace(":", "-")
    assert client.get("/boot/ipxe", params={"mac": MAC}).status_code == 200
    assert client.head(url("vmlinuz"), params={"mac": MAC}).status_code == 200  # not recorded
    assert client.get(url("vmlinuz"), params={"mac": MAC}).content == files["vmlinuz"]
    assert client.get(url("initrd.img"), params={"mac": MAC}).content == files["initrd.img"]
    squashfs = f"/boot/m/{hyphens}/images/{IMAGE}/root.squashfs"
    assert client.get(squashfs).content == files["root.squashfs"]
    assert client.get(squashfs, headers={"Range": "bytes=0-9"}).status_code == 206

    deadline = time.monotonic() + 5  # the end event is written after the body went out
    while len(events := boot_events(master, MAC)) < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["script", "kernel", "initrd", "squashfs-start"]
    assert sorted(kinds[4:]) == ["squashfs-end", "squashfs-end", "squashfs-start"]
    assert {e.image_id for e in events} == {IMAGE}
    assert all(e.ip == "127.0.0.1" for e in events)
    ends = [e.detail for e in events if e.kind == "squashfs-end"]
    full = next(d for d in ends if "range" not in d)
    assert full["bytes"] == len(files["root.squashfs"]) and full["complete"] is True
    assert full["seconds"] >= 0
    ranged = next(d for d in ends if "range" in d)
    assert ranged == {**ranged, "range": "bytes=0-9", "bytes": 10, "complete": True}
    starts = [e.detail for e in events if e.kind == "squashfs-start"]
    assert starts == [{}, {"range": "bytes=0-9"}]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=5-", (5, 99)),
        ("bytes=-5", (95, 99)),
        ("bytes=-500", (0, 99)),
        ("bytes=90-500", (90, 99)),
        ("bytes=9-5", None),  # backwards: ignored, whole file
        ("bytes=0-1,5-6", None),  # several ranges: whole file
        ("items=0-1", None),
        ("bytes=-", None),
        ("bytes=x-1", None),
    ],
)
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=100-", 100), ("bytes=-0", 100), ("bytes=-1", 0)]
)
def test_parse_range_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, size)
