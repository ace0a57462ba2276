"""ImageStore: listing, activation, deletion, diff and the atomic commit of a staging dir."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from store_helpers import (
    BASE_TIME,
    add_image,
    snapshot,
    store_fixture,  # noqa: F401  (provides the `store` fixture)
    tmp_entries,
    write_image_dir,
)

from livestrap.errors import StoreError
from livestrap.store.images import ImageInfo, ImageStore, PackageDiff
from livestrap.store.manifest import METADATA

pytestmark = pytest.mark.unit


def test_new_store_creates_nothing(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "data")
    assert store.list() == []
    assert store.active_id() is None
    assert not (tmp_path / "data").exists()


def test_list_sorted_by_created_with_active_flag(store: ImageStore) -> None:
    newer = add_image(store, "b-new", created=BASE_TIME + timedelta(days=1))
    older = add_image(store, "a-old", created=BASE_TIME - timedelta(days=1))
    store.activate("b-new")
    assert store.list() == [
        ImageInfo("a-old", older.label, older.created, older.total_size(), active=False),
        ImageInfo("b-new", newer.label, newer.created, newer.total_size(), active=True),
    ]


def test_list_skips_directories_without_valid_metadata(store: ImageStore) -> None:
    add_image(store, "good")
    (store.images_dir / "empty").mkdir()
    (store.images_dir / "broken").mkdir()
    (store.images_dir / "broken" / METADATA).write_text("id: [unclosed\n")
    write_image_dir(store.images_dir, "other", dirname="renamed")  # metadata id != dir name
    (store.images_dir / "stray-file").write_text("x")
    (store.images_dir / "link").symlink_to("good")
    assert [i.id for i in store.list()] == ["good"]


def test_get_and_path(store: ImageStore) -> None:
    meta = add_image(store, "img1", packages={"bash": "5.2", "curl": "7.88"})
    assert store.get("img1") == meta
    assert store.path("img1") == store.images_dir / "img1"


def test_get_missing_and_invalid_ids(store: ImageStore) -> None:
    with pytest.raises(StoreError, match="no image nope"):
        store.get("nope")
    for bad in ("../etc", "a/b", ".hidden", ""):
        with pytest.raises(StoreError, match="invalid image id"):
            store.get(bad)


def test_activate_swaps_relative_symlink(store: ImageStore) -> None:
    add_image(store, "img1")
    add_image(store, "img2")
    store.activate("img1")
    assert os.readlink(store.active_link) == "images/img1"
    assert store.active_id() == "img1"
    store.activate("img2")
    assert os.readlink(store.active_link) == "images/img2"
    assert store.active_id() == "img2"
    # no temporary links left beside `active`
    assert sorted(p.name for p in store.data_dir.iterdir()) == ["active", "images", "store.lock"]


def test_activate_missing_image_keeps_current(store: ImageStore) -> None:
    add_image(store, "img1")
    store.activate("img1")
    with pytest.raises(StoreError, match="no image ghost"):
        store.activate("ghost")
    assert store.active_id() == "img1"


def test_active_id_refuses_unexpected_link(store: ImageStore) -> None:
    store.data_dir.mkdir(parents=True)
    store.active_link.symlink_to("/etc")
    with pytest.raises(StoreError, match="unexpected target"):
        store.active_id()


def test_delete_removes_image_without_leftovers(store: ImageStore) -> None:
    add_image(store, "img1")
    add_image(store, "img2")
    store.activate("img2")
    store.delete("img1")
    assert [i.id for i in store.list()] == ["img2"]
    assert tmp_entries(store) == []
    with pytest.raises(StoreError, match="no image img1"):
        store.delete("img1")


def test_delete_refuses_active_image(store: ImageStore) -> None:
    add_image(store, "img1")
    store.activate("img1")
    before = snapshot(store)
    with pytest.raises(StoreError, match="img1 is active; activate another image"):
        store.delete("img1")
    assert snapshot(store) == before
    assert store.active_id() == "img1"


def test_diff(store: ImageStore) -> None:
    add_image(store, "a", packages={"bash": "5.1", "curl": "7.74", "gone": "1"})
    add_image(store, "b", packages={"bash": "5.2", "curl": "7.74", "new": "2"})
    assert store.diff("a", "b") == PackageDiff(
        added={"new": "2"}, removed={"gone": "1"}, changed={"bash": ("5.1", "5.2")}
    )
    assert store.diff("a", "a").is_empty()


def _staged(store: ImageStore, image_id: str) -> Path:
    staging = store.new_staging_dir("build-")
    parent = staging.parent
    staging.rmdir()
    write_image_dir(parent, image_id, dirname=staging.name)
    return staging


def test_commit_renames_staging_into_place(store: ImageStore) -> None:
    staging = _staged(store, "img1")
    assert staging.parent == store.tmp_dir
    inode = staging.stat().st_ino
    dest = store.commit(staging, "img1")
    assert dest == store.images_dir / "img1"
    assert dest.stat().st_ino == inode  # moved by rename, not copied
    assert dest.stat().st_mode & 0o777 == 0o755
    assert not staging.exists()
    assert tmp_entries(store) == []
    assert store.get("img1").id == "img1"


def test_commit_refuses_existing_id(store: ImageStore) -> None:
    add_image(store, "img1")
    before = snapshot(store)
    staging = _staged(store, "img1")
    with pytest.raises(StoreError, match="img1 already exists"):
        store.commit(staging, "img1")
    assert snapshot(store) == before
    assert staging.is_dir()  # the caller decides what to do with its staging dir


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "extra").write_text("x"), "extra: extra"),
        (lambda d: (d / "vmlinuz").unlink(), "missing: vmlinuz"),
        (lambda d: (d / "initrd.img").write_bytes(b"tampered"), "do not match.*initrd.img"),
        (lambda d: (d / METADATA).write_text("{}"), "not valid image metadata"),
    ],
)
def test_commit_refuses_incomplete_or_corrupt_staging(
    store: ImageStore, damage: Callable[[Path], object], message: str
) -> None:
    add_image(store, "old")
    before = snapshot(store)
    staging = _staged(store, "img1")
    damage(staging)
    with pytest.raises(StoreError, match=message):
        store.commit(staging, "img1")
    assert snapshot(store) == before


def test_commit_refuses_metadata_for_another_id(store: ImageStore) -> None:
    staging = _staged(store, "img1")
    with pytest.raises(StoreError, match="staging metadata is for image img1, not img2"):
        store.commit(staging, "img2")
    assert snapshot(store) == {}


def test_commit_across_filesystems_is_refused(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = _staged(store, "img1")

    def cross_device(src: object, dst: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "rename", cross_device)
    with pytest.raises(StoreError, match="same filesystem"):
        store.commit(staging, "img1")
    assert not (store.images_dir / "img1").exists()


def test_clean_stale_tmp(store: ImageStore) -> None:
    """Only entries of a gone owner go (tests/unit/test_store_tmp.py has the stale ones);
    build trees are the build lock's, names tmpdirs did not make are left alone."""
    assert store.clean_stale_tmp() == []
    staging = store.new_staging_dir("build-")
    (staging / "half-written").write_bytes(b"x")
    live_import = store.new_staging_dir("import-")
    (store.tmp_dir / "stray").write_text("x")
    (store.tmp_dir / "dangling").symlink_to("/nonexistent")
    assert store.clean_stale_tmp() == []
    assert tmp_entries(store) == sorted(["dangling", "stray", staging.name, live_import.name])
