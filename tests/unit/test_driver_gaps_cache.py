"""master.services.drivers: a node's gaps against the active image, computed on read,
the image's decoded record cached by its metadata file's identity."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_helpers import write_image_dir

from driverkit import add_coverage, fixture_coverage
from livestrap.master.services import drivers
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit

E810 = {"address": "0000:3b:00.0", "class": "020000", "vendor": "8086", "device": "1592"}
VGA = {"address": "0000:03:00.0", "class": "030000", "vendor": "102b", "device": "0536"}
NVME = {"address": "0000:af:00.0", "class": "010802", "vendor": "144d", "device": "a808"}


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "data")
    write_image_dir(store.images_dir, "img-1")
    add_coverage(store.images_dir / "img-1")
    write_image_dir(store.images_dir, "img-old")
    return store


def test_gaps_of_the_active_image(store: ImageStore) -> None:
    cache = drivers.CoverageCache()
    facts = {"pci": [VGA, NVME, E810]}
    assert drivers.node_driver_gaps(store, facts, cache) is None  # nothing active
    store.activate("img-1")
    gaps = drivers.node_driver_gaps(store, facts, cache)
    assert gaps is not None
    assert [(g.slot, g.status, g.missing_firmware) for g in gaps] == [
        ("0000:3b:00.0", "no-firmware", ["intel/ice/ddp/ice.pkg"])
    ]
    store.activate("img-old")
    assert drivers.node_driver_gaps(store, facts, cache) is None  # no record: not known
    assert drivers.node_driver_gaps(store, {}, cache) is None
    assert drivers.node_driver_gaps(store, {"pci": "junk"}, cache) is None


def test_cache_reads_metadata_once_and_sees_a_new_file(
    store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = drivers.CoverageCache(size=1)
    reads: list[str] = []
    real_get = ImageStore.get
    monkeypatch.setattr(ImageStore, "get", lambda s, i: reads.append(i) or real_get(s, i))
    first = cache.get(store, "img-1")
    assert cache.get(store, "img-1") is first and reads == ["img-1"]
    # the same id with other metadata (deleted, then imported again): read anew
    add_coverage(store.images_dir / "img-1", fixture_coverage({"intel/ice/ddp/ice.pkg"}))
    second = cache.get(store, "img-1")
    assert second is not first and reads == ["img-1", "img-1"]
    assert cache.get(store, "img-old") is None  # evicts img-1 (size 1)
    cache.get(store, "img-1")
    assert reads == ["img-1", "img-1", "img-old", "img-1"]
