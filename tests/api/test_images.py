"""/api/v1/images against a real master: list, show, diff, activate, delete, export, import."""

from __future__ import annotations

import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import (
    BASE_TIME,
    image_members,
    member,
    snapshot,
    write_image_dir,
    write_tar,
)

from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA

pytestmark = pytest.mark.integration

OLD, NEW = "img-1", "img-2"


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """A master with two images, the older one active."""
    data = tmp_path_factory.mktemp("source") / "data"
    write_image_dir(data / "images", OLD, packages={"bash": "5.2", "curl": "7.88", "vim": "9.0"})
    write_image_dir(
        data / "images",
        NEW,
        created=BASE_TIME + timedelta(hours=1),
        packages={"bash": "5.2", "curl": "8.0", "zstd": "1.5"},
    )
    ImageStore(data).activate(OLD)
    with master_process(data) as m:
        yield m


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """An empty master to import into."""
    with master_process(tmp_path_factory.mktemp("target") / "data") as m:
        yield m


@pytest.fixture
def admin(source: Master) -> Iterator[httpx.Client]:
    with source.admin() as c:
        yield c


def test_admin_token_required(source: Master) -> None:
    paths = ["/api/v1/images", f"/api/v1/images/{OLD}", f"/api/v1/images/{OLD}/export"]
    with source.anonymous() as c:
        for path in paths:
            assert c.get(path).status_code == 401
        assert c.post(f"/api/v1/images/{NEW}/activate").status_code == 401
        assert c.delete(f"/api/v1/images/{NEW}").status_code == 401
        assert c.post("/api/v1/images/import", content=b"x").status_code == 401
        r = c.get("/api/v1/images", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
    assert ImageStore(source.data_dir).active_id() == OLD


def test_list(admin: httpx.Client) -> None:
    rows = admin.get("/api/v1/images").json()
    assert [(r["id"], r["active"]) for r in rows] == [(OLD, True), (NEW, False)]
    assert rows[0]["label"] == f"label {OLD}"
    assert rows[0]["created"] == "2024-05-01T12:00:00Z"
    sizes = sum(len(f"{n} of {OLD}\n") for n in ("vmlinuz", "initrd.img", "root.squashfs"))
    assert rows[0]["total_size"] == sizes


def test_show(admin: httpx.Client) -> None:
    meta = admin.get(f"/api/v1/images/{NEW}").json()
    assert meta["id"] == NEW
    assert meta["active"] is False
    assert meta["packages"] == {"bash": "5.2", "curl": "8.0", "zstd": "1.5"}
    assert set(meta["artifacts"]) == {"vmlinuz", "initrd.img", "root.squashfs"}
    assert meta["kernel_cmdline"] == ["console=ttyS0"]
    assert admin.get("/api/v1/images/nope").status_code == 404
    r = admin.get("/api/v1/images/bad$id")
    assert r.status_code == 404
    assert "not a valid image id" in r.json()["detail"]


def test_diff(admin: httpx.Client) -> None:
    assert admin.get(f"/api/v1/images/{OLD}/diff/{NEW}").json() == {
        "a": OLD,
        "b": NEW,
        "added": {"zstd": "1.5"},
        "removed": {"vim": "9.0"},
        "changed": {"curl": ["7.88", "8.0"]},
    }
    assert admin.get(f"/api/v1/images/{OLD}/diff/nope").status_code == 404


def test_activate_and_delete(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_image_dir(data / "images", "a")
    write_image_dir(data / "images", "b", created=BASE_TIME + timedelta(minutes=1))
    with master_process(data) as m, m.admin() as c:
        assert c.post("/api/v1/images/a/activate").json() == {"active": "a"}
        r = c.delete("/api/v1/images/a")
        assert r.status_code == 409
        assert "active" in r.json()["detail"]
        assert c.post("/api/v1/images/b/activate").status_code == 200
        assert c.delete("/api/v1/images/a").status_code == 204
        assert [i["id"] for i in c.get("/api/v1/images").json()] == ["b"]
        assert c.post("/api/v1/images/a/activate").status_code == 404
        assert ImageStore(data).active_id() == "b"


def test_unique_id_prefixes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_image_dir(data / "images", "rack-1", packages={"bash": "5.2"})
    write_image_dir(data / "images", "rack-2", packages={"bash": "5.3"})
    write_image_dir(data / "images", "lab-1", created=BASE_TIME + timedelta(minutes=1))
    with master_process(data) as m, m.admin() as c:
        assert c.get("/api/v1/images/lab").json()["id"] == "lab-1"
        assert c.get("/api/v1/images/rack-1/diff/rack-2").json()["changed"] == {
            "bash": ["5.2", "5.3"]
        }
        assert c.get("/api/v1/images/lab/diff/rack-2").json()["a"] == "lab-1"
        r = c.get("/api/v1/images/rack")
        assert r.status_code == 409
        assert r.json() == {"detail": "image id prefix 'rack' is ambiguous: rack-1, rack-2"}
        assert c.get("/api/v1/images/rack/export").status_code == 409
        assert c.get("/api/v1/images/web").status_code == 404
        assert c.post("/api/v1/images/lab/activate").json() == {"active": "lab-1"}
        exported = c.get("/api/v1/images/rack-2/export", params={"compression": "none"})
        assert exported.status_code == 200
        assert c.delete("/api/v1/images/rack-").status_code == 409
        assert c.delete("/api/v1/images/rack-1").status_code == 204
        assert c.delete("/api/v1/images/rack").status_code == 204  # unique now: rack-2
        assert [i["id"] for i in c.get("/api/v1/images").json()] == ["lab-1"]


def no_bundles_left(data_dir: Path) -> bool:
    tmp = data_dir / "tmp"
    return not tmp.exists() or not any(p.name.startswith("api-") for p in tmp.iterdir())


def wait_until(check: Callable[[], bool], timeout: float = 5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize(("compression", "suffix"), [("zst", ".tar.zst"), ("gz", ".tar.gz")])
def test_export_import_round_trip(
    admin: httpx.Client, source: Master, target: Master, compression: str, suffix: str
) -> None:
    image_id = OLD if compression == "zst" else NEW
    r = admin.get(f"/api/v1/images/{image_id}/export", params={"compression": compression})
    assert r.status_code == 200
    assert r.headers["content-disposition"] == f'attachment; filename="{image_id}{suffix}"'
    assert wait_until(lambda: no_bundles_left(source.data_dir))
    with target.admin() as t:
        if compression == "zst":
            imported = t.post("/api/v1/images/import", content=r.content)
        else:  # the multipart form of the upload
            imported = t.post("/api/v1/images/import", files={"file": ("b.tgz", r.content)})
        assert imported.status_code == 201, imported.text
        assert imported.json()["id"] == image_id
        assert imported.json()["active"] is False
        assert t.get(f"/api/v1/images/{image_id}").json() == {
            **admin.get(f"/api/v1/images/{image_id}").json(),
            "active": False,
        }
        again = t.post("/api/v1/images/import", content=r.content)
        assert again.status_code == 409
        assert "already exists" in again.json()["detail"]
    src, dst = ImageStore(source.data_dir), ImageStore(target.data_dir)
    for name in ("vmlinuz", "initrd.img", "root.squashfs", METADATA):
        assert (dst.path(image_id) / name).read_bytes() == (src.path(image_id) / name).read_bytes()
    assert no_bundles_left(target.data_dir)


def test_export_errors(admin: httpx.Client) -> None:
    assert admin.get("/api/v1/images/nope/export").status_code == 404
    r = admin.get(f"/api/v1/images/{OLD}/export", params={"compression": "rar"})
    assert r.status_code == 422


def wrong_sha_members(image_id: str) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """vmlinuz of the right size but other bytes: only its sha256 gives it away."""
    members = image_members(image_id)
    for i, (info, data) in enumerate(members):
        if info.name.endswith("/vmlinuz"):
            assert data is not None
            members[i] = member(info.name, b"X" * len(data))
    return members


@pytest.mark.parametrize(
    ("members", "named"),
    [
        ([*image_members("evil"), member("../evil", b"boom")], "'../evil'"),
        (
            [*image_members("evil")[:2], member("evil/root.squashfs", None, type=tarfile.SYMTYPE,
                                                linkname="/etc/passwd")],
            "'evil/root.squashfs'",
        ),
        (wrong_sha_members("evil"), "'evil/vmlinuz'"),
        ([], "missing"),
    ],
    ids=["traversal", "symlink", "sha256", "empty"],
)  # fmt: skip
def test_import_refusals(
    target: Master, tmp_path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]], named: str
) -> None:
    store = ImageStore(target.data_dir)
    before = snapshot(store)
    bundle = write_tar(tmp_path / "bad.tar", members)
    with target.admin() as t:
        r = t.post(
            "/api/v1/images/import",
            content=bundle.read_bytes(),
            headers={"Content-Type": "application/octet-stream"},
        )
    assert r.status_code == 422, r.text
    assert named in r.json()["detail"]
    assert snapshot(store) == before
    assert not (target.data_dir / "evil").exists()
    assert not (target.data_dir / "images" / "evil").exists()
    assert no_bundles_left(target.data_dir)
    assert not [p for p in store.tmp_dir.iterdir() if p.name.startswith("import-")]


def test_multipart_without_file_field(target: Master) -> None:
    with target.admin() as t:
        r = t.post("/api/v1/images/import", data={"other": "x"}, files={"nope": ("x", b"1")})
    assert r.status_code == 422
    assert "`file`" in r.json()["detail"]
