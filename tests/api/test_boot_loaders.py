"""/boot/efi/NAME against a real master: the allow-listed EFI loaders from `ipxe_dir`,
their validators and ranges, and the `loader` event the next script request claims."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.master.models import BootEvent
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

MAC = "52:54:00:aa:bb:01"
IPXE = b"MZ" + bytes(range(256)) * 40  # what the master sends: whatever the file holds
SNP = b"MZsnp" * 100


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """ipxe.efi a symlink (as Debian ships it, to /boot), snponly.efi a file, and a file
    beside them that is not on the allow-list."""
    base = tmp_path_factory.mktemp("loaders")
    ipxe_dir, elsewhere = base / "ipxe", base / "boot"
    ipxe_dir.mkdir()
    elsewhere.mkdir()
    (elsewhere / "ipxe.efi").write_bytes(IPXE)
    (ipxe_dir / "ipxe.efi").symlink_to(elsewhere / "ipxe.efi")
    (ipxe_dir / "snponly.efi").write_bytes(SNP)
    (ipxe_dir / "undionly.kpxe").write_bytes(b"bios")
    with master_process(base / "data", env={"LIVESTRAP_IPXE_DIR": str(ipxe_dir)}) as m:
        yield m


@pytest.fixture
def client(master: Master) -> Iterator[httpx.Client]:
    with master.anonymous() as c:
        yield c


def events(master: Master, kind: str | None = None) -> list[BootEvent]:
    db = master.database()
    try:
        with Session(db.engine) as session:
            query = select(BootEvent).order_by(BootEvent.id)
            if kind:
                query = query.where(BootEvent.kind == kind)
            return list(session.scalars(query))
    finally:
        db.dispose()


def test_serves_the_loaders(client: httpx.Client) -> None:
    for name, body in (("ipxe.efi", IPXE), ("snponly.efi", SNP)):
        r = client.get(f"/boot/efi/{name}")
        assert r.status_code == 200 and r.content == body
        assert r.headers["content-type"] == "application/efi"
        assert r.headers["etag"] == f'"{hashlib.sha256(body).hexdigest()}"'
        assert r.headers["accept-ranges"] == "bytes"
        head = client.head(f"/boot/efi/{name}")
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(body))


def test_validators_and_ranges(client: httpx.Client) -> None:
    etag = client.head("/boot/efi/ipxe.efi").headers["etag"]
    assert client.get("/boot/efi/ipxe.efi", headers={"If-None-Match": etag}).status_code == 304
    part = client.get("/boot/efi/ipxe.efi", headers={"Range": "bytes=2-5"})
    assert part.status_code == 206 and part.content == IPXE[2:6]
    assert part.headers["content-range"] == f"bytes 2-5/{len(IPXE)}"
    past = client.get("/boot/efi/ipxe.efi", headers={"Range": f"bytes={len(IPXE)}-"})
    assert past.status_code == 416


@pytest.mark.parametrize(
    "name",
    ["undionly.kpxe", "nope.efi", "..%2Fboot%2Fipxe.efi", "%2E%2E", "IPXE.EFI", "ipxe.efi%00"],
)
def test_only_the_allow_list(client: httpx.Client, name: str) -> None:
    r = client.get(f"/boot/efi/{name}")
    assert r.status_code == 404, r.text


def test_missing_loader_is_404(tmp_path: Path) -> None:
    env = {"LIVESTRAP_IPXE_DIR": str(tmp_path / "none")}
    with master_process(tmp_path / "data", env=env) as m, m.anonymous() as c:
        r = c.get("/boot/efi/ipxe.efi")
        assert r.status_code == 404 and "apt-get install ipxe" in r.text


def test_loader_event_claimed_by_the_script(master: Master, client: httpx.Client) -> None:
    """A GET is a `loader` event with the IP only (HEAD is none); the script request from
    that IP right after gives it the MAC, so it is on the node's timeline."""
    before = len(events(master, "loader"))
    client.head("/boot/efi/ipxe.efi")
    assert client.get("/boot/efi/ipxe.efi").status_code == 200
    deadline = time.monotonic() + 5
    while len(found := events(master, "loader")) == before and time.monotonic() < deadline:
        time.sleep(0.05)
    new = found[before:]
    assert [(e.mac, e.ip, e.detail) for e in new] == [(None, "127.0.0.1", {"name": "ipxe.efi"})]
    assert client.get("/boot/ipxe", params={"mac": MAC}).status_code == 200
    mine = [e for e in events(master) if e.mac == MAC]
    assert [e.kind for e in mine] == ["loader", "script"]
    assert mine[0].id == new[0].id and mine[0].at <= mine[1].at
    # claimed once, newest first: the next script request from this address gets an older
    # one (the earlier tests' downloads), never the same
    assert client.get("/boot/ipxe", params={"mac": "52:54:00:aa:bb:02"}).status_code == 200
    other = [e for e in events(master) if e.mac == "52:54:00:aa:bb:02"]
    assert [e.kind for e in other] == ["loader", "script"] and other[0].id < new[0].id
