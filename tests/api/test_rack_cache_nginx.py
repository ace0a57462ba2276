"""Rack caches (issue 18): two real nginx caches rendered by `netboot rack-config` in
front of one master. 100 nodes download root.squashfs at once through each: the master
sends the file once per cache (its fill counter and byte counter say so), every download
is the image's bytes (sha256 of metadata.yaml), and every node's timeline has its start
and its complete end, reported by the cache after the transfer (nothing waits for the
report). Also: nginx in front in direct mode, which reports the same way."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from helpers import open_to_nginx, require_commands
from masterproc import NO_LIMITS, Master, free_port, master_process, scrape

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
sys.path.insert(0, str(Path(__file__).parent.parent.parent / "bench"))

from store_helpers import METADATA, dump_metadata, make_metadata

from livestrap.master.models import BootEvent
from livestrap.netboot.nginx import NginxOptions, render_nginx_config
from livestrap.netboot.rackcache import RackOptions, render_rack_config

pytestmark = pytest.mark.integration

IMAGE = "img-rack"
NODES_PER_CACHE = 100
RACK_PEER = "127.0.0.7"  # a rack cache on another host, as the master sees it
SQUASHFS_BYTES = 6 << 20  # under one slice: one upstream fetch per cache


def write_image(images: Path) -> dict[str, bytes]:
    files = {"vmlinuz": b"kernel of rack\n", "initrd.img": b"initrd of rack\n",
             "root.squashfs": os.urandom(SQUASHFS_BYTES)}  # fmt: skip
    image = images / IMAGE
    image.mkdir(parents=True)
    for name, data in files.items():
        (image / name).write_bytes(data)
    (image / METADATA).write_text(dump_metadata(make_metadata(IMAGE, files)))
    return files


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Master, dict[str, bytes]]]:
    require_commands("nginx")
    data = tmp_path_factory.mktemp("rack") / "data"
    files = write_image(data / "images")
    env = {**NO_LIMITS, "LIVESTRAP_MAC_EVENT_BURST": "1000",
           "LIVESTRAP_TRUSTED_PROXIES": f"127.0.0.1 {RACK_PEER}"}  # fmt: skip
    with master_process(data, env=env) as m:
        m.admin().post(f"/api/v1/images/{IMAGE}/activate").raise_for_status()
        yield m, files


def metric(master: Master, name: str, **labels: str) -> float:
    return scrape(master)[(name, tuple(sorted(labels.items())))]


def mac(cache: int, n: int) -> str:
    return f"52:54:00:0{cache}:{n // 256:02x}:{n % 256:02x}"


async def storm(port: int, cache: int, want: str) -> list[str]:
    """NODES_PER_CACHE downloads at once; the sha256 of each."""
    limits = httpx.Limits(max_connections=NODES_PER_CACHE)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60,
                                 limits=limits) as c:  # fmt: skip

        async def one(n: int) -> str:
            path = f"/boot/m/{mac(cache, n).replace(':', '-')}/images/{IMAGE}/root.squashfs"
            r = await c.get(path)
            assert r.status_code == 200, r.text[:200]
            return hashlib.sha256(r.content).hexdigest()

        return await asyncio.gather(*(one(n) for n in range(NODES_PER_CACHE)))


def timeline(master: Master, want: int) -> list[BootEvent]:
    db = master.database()
    deadline = time.monotonic() + 20
    try:
        while True:
            with Session(db.engine) as s:
                found = list(s.scalars(select(BootEvent).where(BootEvent.image_id == IMAGE)))
            if len(found) >= want or time.monotonic() > deadline:
                return found
            time.sleep(0.1)
    finally:
        db.dispose()


def test_two_rack_caches_fetch_once_each(
    master: tuple[Master, dict[str, bytes]], tmp_path: Path
) -> None:
    from nginxproc import nginx_process

    m, files = master
    open_to_nginx(tmp_path)
    want = hashlib.sha256(files["root.squashfs"]).hexdigest()
    fills = metric(m, "livestrap_boot_cache_fills_total", artifact="root.squashfs")
    sent = metric(m, "livestrap_boot_file_bytes_total", artifact="root.squashfs", via="master")
    ports = [free_port(), free_port()]
    with contextlib.ExitStack() as stack:
        for i, port in enumerate(ports):
            cache = tmp_path / f"cache{i}"
            cache.mkdir(mode=0o777)
            cache.chmod(0o777)
            opts = RackOptions(
                masters=(m.url,), listen=f"127.0.0.1:{port}", cache_dir=str(cache), node_rate=0
            )  # 100 nodes, one address
            stack.enter_context(nginx_process(tmp_path / f"nginx{i}",
                                              render_rack_config(opts), port))  # fmt: skip

        async def both() -> list[list[str]]:
            return await asyncio.gather(*(storm(p, i, want) for i, p in enumerate(ports)))

        digests = asyncio.run(both())
        for i, port in enumerate(ports):  # the API and boot scripts: through, uncached
            r = httpx.get(f"http://127.0.0.1:{port}/boot/ipxe", params={"mac": mac(i + 4, 0)})
            assert f"http://127.0.0.1:{port}/boot/images/{IMAGE}/vmlinuz" in r.text
            assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
        events = timeline(m, 4 * NODES_PER_CACHE)
        for i in range(2):
            assert "[error]" not in (tmp_path / f"nginx{i}" / "error.log").read_text()
    assert all(d == [want] * NODES_PER_CACHE for d in digests)  # every byte the image's
    assert metric(m, "livestrap_boot_cache_fills_total", artifact="root.squashfs") == fills + 2
    after = metric(m, "livestrap_boot_file_bytes_total", artifact="root.squashfs", via="master")
    assert after - sent == 2 * SQUASHFS_BYTES  # one upstream fetch per cache
    by_mac: dict[str, list[BootEvent]] = {}
    for e in (e for e in events if e.kind != "script"):
        by_mac.setdefault(e.mac or "", []).append(e)
    assert len(by_mac) == 2 * NODES_PER_CACHE  # the fills left no event of their own
    for node, found in by_mac.items():
        kinds = sorted(e.kind for e in found)
        assert kinds == ["squashfs-end", "squashfs-start"], (node, kinds)
        end = next(e for e in found if e.kind == "squashfs-end")
        assert end.detail == {"bytes": SQUASHFS_BYTES, "seconds": end.detail["seconds"],
                              "complete": True, "via": "rack"}  # fmt: skip
        assert {e.ip for e in found} == {"127.0.0.1"}  # the node's address, from the cache


def test_direct_nginx_reports_aside(
    master: tuple[Master, dict[str, bytes]], tmp_path: Path
) -> None:
    """nginx in front in direct mode: files straight from the store, the timeline whole."""
    from nginxproc import nginx_process

    m, files = master
    open_to_nginx(tmp_path)
    images = (m.data_dir / "images").resolve()
    open_to_nginx(images)
    port = free_port()
    opts = NginxOptions(str(images), master=m.url, listen=f"127.0.0.1:{port}", direct=True)
    node = "52:54:00:0d:00:01"
    with nginx_process(tmp_path / "nginx", render_nginx_config(opts), port) as nginx:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            r = c.get(f"/boot/images/{IMAGE}/vmlinuz", params={"mac": node})
            assert r.content == files["vmlinuz"]
            squashfs = f"/boot/m/{node.replace(':', '-')}/images/{IMAGE}/root.squashfs"
            assert c.get(squashfs).content == files["root.squashfs"]
            r = c.get(squashfs, headers={"Range": "bytes=0-9"})
            assert (r.status_code, r.content) == (206, files["root.squashfs"][:10])
            assert c.head(squashfs).status_code == 200  # no event
            assert c.get(f"/boot/images/{IMAGE}/metadata.yaml").status_code == 404
            forged = c.post("/boot/nginx/sent", headers={"X-Original-URI": squashfs,
                                                         "X-Bytes-Sent": "1"})  # fmt: skip
            assert forged.status_code == 403
        found = [e for e in timeline(m, 0) if e.mac == node]
        deadline = time.monotonic() + 10
        while len(found) < 5 and time.monotonic() < deadline:
            time.sleep(0.1)
            found = [e for e in timeline(m, 0) if e.mac == node]
        assert "[error]" not in nginx.error_log.read_text()
    kinds = sorted(e.kind for e in found)
    assert kinds == ["kernel", "squashfs-end", "squashfs-end", "squashfs-start", "squashfs-start"]
    assert all(e.detail.get("via") == "nginx" for e in found)
    ends = sorted((e.detail.get("range", ""), e.detail["bytes"], e.detail["complete"])
                  for e in found if e.kind == "squashfs-end")  # fmt: skip
    assert ends == [("", SQUASHFS_BYTES, True), ("bytes=0-9", 10, True)]


@pytest.mark.security
def test_notices_are_taken_from_trusted_rack_caches_only(
    master: tuple[Master, dict[str, bytes]],
) -> None:
    m, _ = master
    uri = f"/boot/m/52-54-00-0e-00-01/images/{IMAGE}/vmlinuz"
    headers = {"X-Original-URI": uri, "X-Bytes-Sent": "15", "X-Request-Time": "0.5",
               "X-Livestrap-Phase": "whole", "X-Livestrap-Via": "rack",
               "X-Livestrap-Client": "10.1.0.9"}  # fmt: skip
    for peer, status in (("127.0.0.5", 403), (RACK_PEER, 204)):
        transport = httpx.HTTPTransport(local_address=peer)
        with httpx.Client(base_url=m.url, timeout=10, transport=transport) as c:
            assert c.post("/boot/nginx/sent", headers=headers).status_code == status
    found = [e for e in timeline(m, 0) if e.mac == "52:54:00:0e:00:01"]
    assert [(e.kind, e.ip, e.detail) for e in found] == [("kernel", "10.1.0.9", {"via": "rack"})]


def test_a_node_over_its_rate_is_refused_and_leaves_no_event(
    master: tuple[Master, dict[str, bytes]], tmp_path: Path
) -> None:
    """--node-rate: a node in a loop gets 429 from the cache, not the file, and the master
    hears of its real downloads only."""
    from nginxproc import nginx_process

    m, files = master
    open_to_nginx(tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    port = free_port()
    opts = RackOptions(masters=(m.url,), listen=f"127.0.0.1:{port}", cache_dir=str(cache),
                       node_rate=1)  # burst: 10  # fmt: skip
    node = "52:54:00:0f:00:01"
    with nginx_process(tmp_path / "nginx", render_rack_config(opts), port) as nginx:
        began = time.monotonic()
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            answers = [c.get(f"/boot/images/{IMAGE}/vmlinuz", params={"mac": node})
                       for _ in range(30)]  # fmt: skip
        took = time.monotonic() - began
        served = [a for a in answers if a.status_code == 200]
        assert all(a.content == files["vmlinuz"] for a in served)
        assert {a.status_code for a in answers} == {200, 429}
        assert 11 <= len(served) <= 12 + took, took  # the burst, then one a second
        found = [e for e in timeline(m, 0) if e.mac == node]
        deadline = time.monotonic() + 10
        while len(found) < len(served) and time.monotonic() < deadline:
            time.sleep(0.1)
            found = [e for e in timeline(m, 0) if e.mac == node]
        time.sleep(0.5)  # a late notice of a refusal would show now
        found = [e for e in timeline(m, 0) if e.mac == node]
        assert "[error]" not in nginx.error_log.read_text()  # refusals are warnings
    assert [e.kind for e in found] == ["kernel"] * len(served)
