"""The console's images pages against a real master with images from fake builds: the list,
an image's packages, the diff, activate, delete, export and the htmx import (the API's
checks), CSRF on every write, and labels / package names from a crafted bundle as text."""

from __future__ import annotations

import shutil
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest

from masterproc import Master

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import (
    artifact_bytes,
    image_members,
    make_metadata,
    member,
    write_image_dir,
    write_tar,
)

from livestrap.master.config import MAX_BODY_BYTES
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, dump_metadata

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
SETTINGS = {"label": "console", "mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}
FINISHED = {"succeeded", "failed", "cancelled", "interrupted"}
XSS = "<script>alert(1)</script>"
XSS_PACKAGE = '<img src=x onerror="alert(2)">'
Console = tuple[httpx.Client, str]


class Tables(HTMLParser):
    """The text of every cell of every table with an id: {id: [[cell, ...], ...]}."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (table_id := dict(attrs).get("id")):
            self._table = table_id
            self.tables[table_id] = []
        elif self._table and tag == "tr":
            self.tables[self._table].append([])
        elif self._table and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag in ("td", "th") and self._table and self._cell is not None:
            self.tables[self._table][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def rows(html: str, table_id: str) -> list[list[str]]:
    """The body rows (no header) of table#table_id."""
    return Tables(html).tables[table_id][1:]


def build(master: Master, **body: Any) -> str:
    """The image a fake build makes (POST /api/v1/builds, then wait for it)."""
    with master.admin() as api:
        answer = api.post("/api/v1/builds", json=body)
        assert answer.status_code == 202, answer.text
        url, deadline = f"/api/v1/builds/{answer.json()['id']}", time.monotonic() + 30
        while (done := api.get(url).json())["state"] not in FINISHED:
            assert time.monotonic() < deadline, f"build stuck in {done['state']}"
            time.sleep(0.05)
    assert done["state"] == "succeeded", done
    image_id: str = done["image_id"]
    return image_id


@pytest.fixture(scope="module")
def built(master: Master) -> tuple[str, str]:
    """Two images from fake builds (the first one active): curl+vim, then curl+zstd."""
    (master.data_dir / "spec").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "keys/archive-test.asc", master.data_dir / "spec/archive.asc")
    with master.admin() as api:
        api.put("/api/v1/settings", json=SETTINGS).raise_for_status()
    old = build(master, overrides={"packages": ["curl", "vim"]}, activate=True)
    new = build(master, overrides={"packages": ["curl", "zstd"]})
    return old, new


def hx(token: str) -> dict[str, str]:
    """The headers htmx sends for the import (from <body hx-headers>)."""
    return {"HX-Request": "true", "X-CSRF-Token": token}


def test_list_shows_every_image_and_marks_the_active_one(
    master: Master, console: Console, built: tuple[str, str]
) -> None:
    client, _ = console
    old, new = built
    page = client.get("/ui/images")
    assert page.status_code == 200
    listed = {r[0].split()[0]: r for r in rows(page.text, "images")}
    assert set(listed) >= {old, new}
    assert listed[old][0] == f"{old} active" and listed[new][0] == new
    assert listed[old][1] == "console"
    store = ImageStore(master.data_dir)
    size = store.get(new).total_size()
    assert listed[new][3] == f"{size / 1024:.1f} KiB"
    assert listed[new][4:] == ["6.1.0-fake", "0.1.0"]  # kernel, agent version
    assert page.text.count('class="badge active"') == 1


def test_image_page_lists_every_package_with_its_version(
    console: Console, built: tuple[str, str]
) -> None:
    client, _ = console
    page = client.get(f"/ui/images/{built[1]}")
    assert page.status_code == 200
    assert rows(page.text, "packages") == [
        ["curl", "1.0"], ["livestrap-agent", "0.1.0"], ["zstd", "1.0"],
    ]  # fmt: skip
    for form in ('class="activate"', 'class="delete"', 'class="export"'):
        assert form in page.text
    assert client.get(f"/ui/images/{built[0]}").text.count('class="activate"') == 0  # active
    missing = client.get("/ui/images/nope")
    assert missing.status_code == 404 and "no image nope" in missing.text
    assert "text/html" in missing.headers["content-type"]


def test_diff_of_two_images(console: Console, built: tuple[str, str]) -> None:
    client, _ = console
    old, new = built
    chooser = client.get("/ui/images")
    assert 'id="diff-form"' in chooser.text and f'<option value="{new}"' in chooser.text
    page = client.get("/ui/images/diff", params={"a": old, "b": new})
    assert page.status_code == 200 and 'id="diff"' in page.text
    assert rows(page.text, "added") == [["zstd", "1.0"]]
    assert rows(page.text, "removed") == [["vim", "1.0"]]
    assert rows(page.text, "changed") == [["None."]]
    assert f'<option value="{new}" selected>' in page.text
    assert 'id="diff"' not in client.get("/ui/images/diff").text  # nothing chosen yet
    assert client.get("/ui/images/diff", params={"a": old, "b": "nope"}).status_code == 404


def test_writes_need_the_csrf_token(
    master: Master, console: Console, built: tuple[str, str]
) -> None:
    client, token = console
    old, new = built
    for path in (f"/ui/images/{new}/activate", f"/ui/images/{new}/delete"):
        assert client.post(path).status_code == 403
        assert client.post(path, data={"csrf_token": "x" * 43}).status_code == 403
    upload = {"bundle": ("b.tar", b"x")}
    assert client.post("/ui/images/import", files=upload).status_code == 403
    wrong = client.post("/ui/images/import", files=upload, headers=hx("x" * 43))
    assert wrong.status_code == 403
    # the token in a multipart field is never parsed: uploads send the header
    field = client.post("/ui/images/import", files=upload, data={"csrf_token": token})
    assert field.status_code == 403
    store = ImageStore(master.data_dir)
    assert store.active_id() == old and new in {i.id for i in store.list()}


def test_activate_then_overview_shows_it_and_delete_refuses_the_active_one(
    master: Master, console: Console
) -> None:
    client, token = console
    first = build(master, overrides={"packages": ["jq"]})
    second = build(master, overrides={"packages": ["jq", "git"]})
    answer = client.post(f"/ui/images/{first}/activate", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/images/{first}"
    assert ImageStore(master.data_dir).active_id() == first
    overview = client.get("/ui/")
    assert f'<a href="/ui/images/{first}">{first}</a>' in overview.text
    refused = client.post(f"/ui/images/{first}/delete", data={"csrf_token": token})
    assert refused.status_code == 409
    assert f"image {first} is active; activate another image before deleting it" in refused.text
    assert first in {i.id for i in ImageStore(master.data_dir).list()}
    done = client.post(f"/ui/images/{second}/delete", data={"csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/ui/images"
    assert second not in client.get("/ui/images").text
    assert client.post(f"/ui/images/{second}/delete", data={"csrf_token": token}).status_code == 404


def test_export_is_the_apis_download_and_imports_back(
    master: Master, console: Console, built: tuple[str, str]
) -> None:
    client, token = console
    new = built[1]
    download = client.get(f"/ui/images/{new}/export")
    assert download.status_code == 200
    assert download.headers["content-disposition"] == f'attachment; filename="{new}.tar.zst"'
    with master.admin() as api:
        assert download.content == api.get(f"/api/v1/images/{new}/export").content
    again = client.post("/ui/images/import", files={"bundle": ("b.tar.zst", download.content)},
                        headers=hx(token))  # fmt: skip
    assert again.status_code == 409 and f"image {new} already exists" in again.text
    assert client.post(f"/ui/images/{new}/delete", data={"csrf_token": token}).status_code == 303
    imported = client.post("/ui/images/import", files={"bundle": (f"{new}.tar.zst",
                           download.content)}, headers=hx(token))  # fmt: skip
    assert imported.status_code == 201, imported.text
    assert f'Imported <a href="/ui/images/{new}">{new}</a>' in imported.text
    assert 'id="images" hx-swap-oob="true"' in imported.text  # the list, refreshed
    assert new in {r[0].split()[0] for r in rows(client.get("/ui/images").text, "images")}


def test_hostile_bundles_are_refused_naming_the_member(
    master: Master, console: Console, tmp_path: Path
) -> None:
    client, token = console
    before = {i.id for i in ImageStore(master.data_dir).list()}
    bundle = write_tar(tmp_path / "bad.tar", [*image_members("evil"), member("../evil", b"x")])
    answer = client.post("/ui/images/import", files={"bundle": ("bad.tar", bundle.read_bytes())},
                         headers=hx(token))  # fmt: skip
    assert answer.status_code == 422
    assert '<p class="refused" role="alert">Refused: ' in answer.text
    assert "&#39;../evil&#39;" in answer.text
    wrong_field = client.post("/ui/images/import", files={"file": ("b.tar", bundle.read_bytes())},
                              headers=hx(token))  # fmt: skip
    assert wrong_field.status_code == 422 and "`bundle` field" in wrong_field.text
    assert {i.id for i in ImageStore(master.data_dir).list()} == before
    assert not (master.data_dir / "evil").exists()


def test_a_bundle_over_the_json_body_cap_is_imported(
    master: Master, console: Console, tmp_path: Path
) -> None:
    """The console's import has the import cap (LIVESTRAP_MAX_IMPORT_BYTES), not the 1 MiB
    of the JSON routes."""
    client, token = console
    image_id = "big-1"
    files = {**artifact_bytes(image_id), "root.squashfs": bytes(3 << 19)}
    meta = make_metadata(image_id, files)
    members = [member(f"{image_id}/{METADATA}", dump_metadata(meta).encode())]
    members += [member(f"{image_id}/{name}", data) for name, data in files.items()]
    bundle = write_tar(tmp_path / "big.tar", members).read_bytes()
    assert len(bundle) > MAX_BODY_BYTES
    answer = client.post("/ui/images/import", files={"bundle": ("big.tar", bundle)},
                         headers=hx(token))  # fmt: skip
    assert answer.status_code == 201, answer.text
    assert ImageStore(master.data_dir).get(image_id).total_size() > MAX_BODY_BYTES


@pytest.mark.security
def test_labels_and_package_names_from_a_bundle_are_text(
    master: Master, console: Console, built: tuple[str, str], tmp_path: Path
) -> None:
    client, token = console
    image_id = "crafted-1"
    meta = make_metadata(image_id, artifact_bytes(image_id),
                         packages={"curl": "2.0", XSS_PACKAGE: XSS})  # fmt: skip
    meta.label = XSS
    bundle = write_tar(tmp_path / "xss.tar", image_members(image_id, meta))
    answer = client.post("/ui/images/import", files={"bundle": ("x.tar", bundle.read_bytes())},
                         headers=hx(token))  # fmt: skip
    assert answer.status_code == 201, answer.text  # the store has no rule against them
    pages = [
        answer.text,
        client.get("/ui/images").text,
        client.get(f"/ui/images/{image_id}").text,
        client.get("/ui/images/diff", params={"a": built[1], "b": image_id}).text,
    ]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;script&gt;alert(1)" in html
    assert [XSS_PACKAGE, XSS] in rows(pages[2], "packages")
    assert rows(pages[3], "changed") == [["curl", "1.0", "2.0"]]
    assert [XSS_PACKAGE, XSS] in rows(pages[3], "added")


def test_pages_need_a_login(master: Master, built: tuple[str, str]) -> None:
    with master.anonymous() as anon:
        for path in ("/ui/images", f"/ui/images/{built[0]}", f"/ui/images/{built[0]}/export"):
            answer = anon.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")
        assert anon.post("/ui/images/import", content=b"x").status_code == 401


def test_image_page_links_the_sbom(
    master: Master, console: Console, built: tuple[str, str]
) -> None:
    client, _ = console
    sbom = b'{"bomFormat": "CycloneDX"}\n'
    write_image_dir(master.data_dir / "images", "sbom-1", sbom=sbom)
    page = client.get("/ui/images/sbom-1").text
    assert 'href="/ui/images/sbom-1/sbom" download="sbom-1.cdx.json"' in page
    answer = client.get("/ui/images/sbom-1/sbom")
    assert answer.status_code == 200 and answer.content == sbom
    assert "/sbom" not in client.get(f"/ui/images/{built[0]}").text  # a fake build has none
    missing = client.get(f"/ui/images/{built[0]}/sbom")
    assert missing.status_code == 404 and "has no SBOM" in missing.text
    with master.anonymous() as anon:
        assert anon.get("/ui/images/sbom-1/sbom").status_code == 303
    assert (
        client.post("/ui/images/sbom-1/delete", data={"csrf_token": console[1]}).status_code == 303
    )
