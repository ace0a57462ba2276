"""Spec paths through the API against a real master: confined to <data-dir>/spec, the
master's secrets never reachable, files uploaded with /settings/files, and the CLI."""

from __future__ import annotations

import io
import shutil
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from livestrap.cli import app as cli_app
from masterproc import Master, master_process

pytestmark = [pytest.mark.integration, pytest.mark.security]

FIXTURES = Path(__file__).parent.parent / "fixtures"
KEY = FIXTURES / "keys/archive-test.asc"
BASE = {"mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}
TAR = {"Content-Type": "application/x-tar"}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    top = tmp_path_factory.mktemp("paths")
    (top / "mirror").mkdir()
    with master_process(top / "data", file_mirror_roots=(top / "mirror",)) as m:
        with m.admin() as c:
            assert c.put("/api/v1/settings/files/archive.asc", content=KEY.read_bytes()).is_success
        yield m


@pytest.fixture
def client(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as c:
        yield c


def tar_of(files: dict[str, bytes], links: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"extra_dirs": ["/"]}, "extra_dirs"),
        ({"extra_dirs": [".."]}, "extra_dirs"),
        ({"extra_dirs": ["../keys"]}, "extra_dirs"),
        ({"extra_dirs": ["DATA"]}, "extra_dirs"),
        ({"extra_dirs": ["DATA/keys"]}, "extra_dirs"),
        ({"scripts": ["../admin.token"]}, "scripts"),
        ({"scripts": ["DATA/discovery.token"]}, "scripts"),
        ({"scripts": ["/etc/shadow"]}, "scripts"),
        ({"scripts": ["DATA/livestrap.db"]}, "scripts"),
        ({"mirror": "file:///etc", "mirror_key": "/etc/shadow"}, "mirror"),
        ({"mirror": "file:///etc", "mirror_key": "/etc/shadow"}, "mirror_key"),
        (
            {"repos": [{"name": "r", "uri": "copy:///etc", "suite": "s", "trusted": True}]},
            "repos[0].uri",
        ),
    ],
)
def test_paths_out_of_the_spec_folder_are_422(
    master: Master, client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    before = client.get("/api/v1/settings").json()
    sent = yaml.safe_load(yaml.safe_dump(body).replace("DATA", str(master.data_dir)))
    resp = client.put("/api/v1/settings", json={**BASE, **sent})
    assert resp.status_code == 422, resp.text
    assert f"\n  {field}: not allowed" in resp.json()["detail"]
    assert client.get("/api/v1/settings").json() == before


def test_build_overrides_are_confined_too(client: httpx.Client) -> None:
    assert client.put("/api/v1/settings", json=BASE).status_code == 200
    resp = client.post("/api/v1/builds", json={"overrides": {"extra_dirs": ["/"]}})
    assert resp.status_code == 422 and "extra_dirs: not allowed" in resp.json()["detail"]


def test_the_old_dot_means_the_spec_folder_now(master: Master, client: httpx.Client) -> None:
    resp = client.put("/api/v1/settings", json={**BASE, "extra_dirs": ["."]})
    assert resp.status_code == 200
    assert resp.json()["extra_dirs"] == [str(master.data_dir / "spec")]


def test_upload_a_file_and_name_it(master: Master, client: httpx.Client) -> None:
    resp = client.put("/api/v1/settings/files/scripts/site.sh", content=b"#!/bin/sh\ntrue\n")
    assert resp.status_code == 200, resp.text
    assert resp.json()["path"] == "scripts/site.sh"
    saved = client.put("/api/v1/settings", json={**BASE, "scripts": ["scripts/site.sh"]}).json()
    assert saved["scripts"] == [str(master.data_dir / "spec/scripts/site.sh")]
    assert client.get("/api/v1/settings/files/scripts/site.sh").content == b"#!/bin/sh\ntrue\n"
    listed = {e["path"]: e for e in client.get("/api/v1/settings/files").json()}
    assert listed["scripts/site.sh"]["type"] == "file" and listed["scripts"]["type"] == "dir"


def test_upload_an_overlay_tree(master: Master, client: httpx.Client) -> None:
    tree = tar_of({"etc/motd": b"hi\n", "root/.ssh/authorized_keys": b"k\n"}, {"etc/i": "motd"})
    resp = client.put("/api/v1/settings/files/overlay", content=tree, headers=TAR)
    assert resp.status_code == 200, resp.text
    assert resp.json()["type"] == "dir" and resp.json()["members"] == 3
    assert (master.data_dir / "spec/overlay/etc/motd").read_text() == "hi\n"
    saved = client.put("/api/v1/settings", json={**BASE, "extra_dirs": ["overlay"]}).json()
    assert saved["extra_dirs"] == [str(master.data_dir / "spec/overlay")]
    again = client.put("/api/v1/settings/files/overlay", content=tar_of({"x": b"1"}), headers=TAR)
    assert again.status_code == 200  # replaced, not merged
    assert not (master.data_dir / "spec/overlay/etc").exists()


@pytest.mark.parametrize(
    "tree",
    [
        tar_of({"../../admin.token": b"x"}),
        tar_of({"keys/x": b"x"}, {"keys": "/etc"}),  # a file through a link...
        tar_of({}, {"up": "../..", "up/keys": "/"}),  # ...or a link through a link
        b"not a tar" * 100,
    ],
)
def test_hostile_trees_are_422_and_change_nothing(
    master: Master, client: httpx.Client, tree: bytes
) -> None:
    before = client.get("/api/v1/settings/files").json()
    resp = client.put("/api/v1/settings/files/evil", content=tree, headers=TAR)
    assert resp.status_code == 422, resp.text
    assert client.get("/api/v1/settings/files").json() == before
    assert not (master.data_dir / "spec/evil").exists()
    assert not list((master.data_dir / "tmp").glob("upload-*"))  # staging cleaned


@pytest.mark.parametrize(
    "path", ["..%2Fadmin.token", "a/../../admin.token", "%2e%2e/keys", "a%0ab"]
)
def test_file_paths_cannot_leave_the_folder(client: httpx.Client, path: str) -> None:
    for method in ("GET", "PUT", "DELETE"):
        resp = client.request(method, f"/api/v1/settings/files/{path}", content=b"x")
        assert resp.status_code in (404, 422), (method, path, resp.status_code)
        assert "secret" not in resp.text


def test_links_in_the_folder_are_not_followed(master: Master, client: httpx.Client) -> None:
    (master.data_dir / "spec/tok").symlink_to(master.data_dir / "admin.token")
    assert client.get("/api/v1/settings/files/tok").status_code == 422
    resp = client.put("/api/v1/settings", json={**BASE, "scripts": ["tok"]})
    assert resp.status_code == 422 and "admin.token" in resp.json()["detail"]
    assert client.delete("/api/v1/settings/files/tok").status_code == 422
    (master.data_dir / "spec/tok").unlink()


def test_delete_and_sizes(client: httpx.Client) -> None:
    assert client.put("/api/v1/settings/files/gone.txt", content=b"x").status_code == 200
    assert client.delete("/api/v1/settings/files/gone.txt").status_code == 204
    assert client.get("/api/v1/settings/files/gone.txt").status_code == 404
    assert client.delete("/api/v1/settings/files/gone.txt").status_code == 404
    big = (b"\0" * 2**20 for _ in range(65))  # 65 MiB, streamed: past the 64 MiB file limit
    assert client.put("/api/v1/settings/files/big.bin", content=big).status_code == 413
    assert client.get("/api/v1/settings/files/big.bin").status_code == 404


def test_files_are_admin_only(master: Master) -> None:
    with master.anonymous() as anon, master.discovery() as disc:
        for c in (anon, disc):
            assert c.get("/api/v1/settings/files").status_code == 401
            assert c.put("/api/v1/settings/files/x", content=b"x").status_code == 401
            assert c.delete("/api/v1/settings/files/archive.asc").status_code == 401


def test_file_mirrors_under_an_allowed_root(master: Master, client: httpx.Client) -> None:
    root = master.data_dir.parent / "mirror"
    resp = client.put("/api/v1/settings", json={**BASE, "mirror": f"file://{root}/debian"})
    assert resp.status_code == 200, resp.text
    resp = client.put("/api/v1/settings", json={**BASE, "mirror": f"file://{root}/../data"})
    assert resp.status_code == 422 and "not under an allowed root" in resp.json()["detail"]


def test_cli_settings_set_uploads_what_the_spec_names(master: Master, tmp_path: Path) -> None:
    """The README's layout: overlay/, scripts/site.sh and a key beside the spec."""
    (tmp_path / "overlay/etc").mkdir(parents=True)
    (tmp_path / "overlay/etc/motd").write_text("from the cli\n")
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts/site.sh").write_text("#!/bin/sh\n")
    shutil.copy(KEY, tmp_path / "archive-key.asc")
    spec = {"mirror": BASE["mirror"], "mirror_key": "./archive-key.asc",
            "extra_dirs": ["overlay"], "scripts": ["scripts/site.sh"]}  # fmt: skip
    (tmp_path / "rack.yaml").write_text(yaml.safe_dump(spec))
    env = {"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token}
    result = CliRunner().invoke(cli_app, ["settings", "set", str(tmp_path / "rack.yaml")], env=env)
    assert result.exit_code == 0, result.output
    with master.admin() as c:
        saved = c.get("/api/v1/settings").json()
    folder = Path(saved["extra_dirs"][0]).parent  # spec/sets/<hash>: a fresh folder
    assert folder.parent == master.data_dir / "spec/sets"
    assert (folder / "overlay/etc/motd").read_text() == "from the cli\n"
    assert saved["extra_dirs"] == [str(folder / "overlay")]
    assert saved["scripts"] == [str(folder / "scripts/site.sh")]
    assert saved["mirror_key"] == str(folder / "archive-key.asc")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**spec, "scripts": ["../x.sh"]}))
    result = CliRunner().invoke(cli_app, ["settings", "set", str(tmp_path / "bad.yaml")], env=env)
    assert result.exit_code != 0 and "inside the spec's folder" in str(result.exception)


def cli_set(master: Master, spec_file: Path) -> Any:
    env = {"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token}
    return CliRunner().invoke(cli_app, ["settings", "set", str(spec_file)], env=env)


def test_cli_carries_file_and_folder_modes(master: Master, tmp_path: Path) -> None:
    """The operator's 0700 .ssh, 0600 key and 0755 script reach spec/ as they are, and
    so do the overlay's absolute links (etc/localtime)."""
    ssh = tmp_path / "overlay/root/.ssh"
    ssh.mkdir(parents=True)
    (ssh / "authorized_keys").write_text("ssh-ed25519 AAAA op\n")
    (ssh / "authorized_keys").chmod(0o600)
    ssh.chmod(0o700)
    (tmp_path / "overlay/usr/local/bin").mkdir(parents=True)
    (tmp_path / "overlay/usr/local/bin/tool").write_text("#!/bin/sh\n")
    (tmp_path / "overlay/usr/local/bin/tool").chmod(0o755)
    (tmp_path / "overlay/etc").mkdir()
    (tmp_path / "overlay/etc/localtime").symlink_to("/usr/share/zoneinfo/UTC")
    wants = tmp_path / "overlay/etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "x.service").symlink_to("/lib/systemd/system/x.service")
    (tmp_path / "rack.yaml").write_text(yaml.safe_dump({**BASE, "extra_dirs": ["overlay"]}))
    (tmp_path / "archive.asc").write_bytes(KEY.read_bytes())
    result = cli_set(master, tmp_path / "rack.yaml")
    assert result.exit_code == 0, result.output
    with master.admin() as c:
        overlay = Path(c.get("/api/v1/settings").json()["extra_dirs"][0])

    def mode(rel: str) -> int:
        return (overlay / rel).lstat().st_mode & 0o7777

    assert (mode("root/.ssh"), mode("root/.ssh/authorized_keys")) == (0o700, 0o600)
    assert mode("usr/local/bin/tool") == 0o755
    assert (overlay / "etc/localtime").readlink() == Path("/usr/share/zoneinfo/UTC")


def test_a_refused_spec_leaves_the_stored_settings_files_alone(
    master: Master, tmp_path: Path
) -> None:
    """Each upload goes into a folder of its own: a new spec that the master refuses has
    changed nothing the stored settings build from; the same files again are not re-sent."""
    (tmp_path / "archive.asc").write_bytes(KEY.read_bytes())
    (tmp_path / "overlay/etc").mkdir(parents=True)
    (tmp_path / "overlay/etc/motd").write_text("good\n")
    (tmp_path / "good.yaml").write_text(yaml.safe_dump({**BASE, "extra_dirs": ["overlay"]}))
    first = cli_set(master, tmp_path / "good.yaml")
    assert first.exit_code == 0 and "uploaded sets/" in first.output, first.output
    with master.admin() as c:
        good = c.get("/api/v1/settings").json()
    (tmp_path / "overlay/etc/motd").write_text("bad\n")
    bad = {**BASE, "extra_dirs": ["overlay"], "packages": ["Not A Package!"]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    result = cli_set(master, tmp_path / "bad.yaml")
    assert result.exit_code != 0  # uploaded, then the spec was refused
    with master.admin() as c:
        assert c.get("/api/v1/settings").json() == good
    assert (Path(good["extra_dirs"][0]) / "etc/motd").read_text() == "good\n"
    (tmp_path / "overlay/etc/motd").write_text("good\n")  # saved again: a new mtime
    result = cli_set(master, tmp_path / "good.yaml")
    assert result.exit_code == 0 and "uploaded" not in result.output, result.output
    with master.admin() as c:
        assert c.get("/api/v1/settings").json() == good  # same files, same folder


def test_a_long_member_name_is_422(client: httpx.Client) -> None:
    """Review: a 300-character name in an uploaded tree was a 500 (ENAMETOOLONG)."""
    before = client.get("/api/v1/settings/files").json()
    resp = client.put(
        "/api/v1/settings/files/longname", content=tar_of({"a" * 300: b"x"}), headers=TAR
    )
    assert resp.status_code == 422 and "longer than 255 bytes" in resp.json()["detail"]
    assert client.get("/api/v1/settings/files").json() == before


def test_the_listing_takes_a_prefix(client: httpx.Client) -> None:
    tree = tar_of({"etc/motd": b"hi\n"})
    assert client.put("/api/v1/settings/files/pre/one", content=tree, headers=TAR).is_success
    assert client.put("/api/v1/settings/files/pre/two", content=b"2").is_success
    rows = client.get("/api/v1/settings/files", params={"prefix": "pre/one"}).json()
    assert [r["path"] for r in rows] == ["pre/one", "pre/one/etc", "pre/one/etc/motd"]
    assert client.get("/api/v1/settings/files", params={"prefix": "pre/none"}).json() == []
    for bad in ("../keys", "/", "", "a/../b", "x" * 2000):
        resp = client.get("/api/v1/settings/files", params={"prefix": bad})
        assert resp.status_code == 422, bad
