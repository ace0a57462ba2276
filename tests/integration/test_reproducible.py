"""Reproducible images: the same inputs built twice give the same bytes.

Two real builds of a minimal spec (no agent, no extra package) from the package cache:
the first commits an image, the second is `build --check`'s rebuild of it (nothing
committed), so one pair covers both the byte comparison and the check itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import TEST_CACHE, require_build_tools
from livestrap.builder.pipeline import build
from livestrap.builder.recheck import CheckReport, check_image
from livestrap.resolve import resolve
from livestrap.spec import load_spec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata

pytestmark = pytest.mark.integration


@dataclass
class Pair:
    first: ImageMetadata
    check: CheckReport
    store: ImageStore


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    require_build_tools()
    tmp = tmp_path_factory.mktemp("reproducible")
    spec_path = tmp / "spec.yaml"
    spec_path.write_text(yaml.safe_dump({"label": "repro", "agent": False}))
    spec = resolve(load_spec(spec_path))
    store = ImageStore(tmp / "data")
    first = build(spec, store, log_path=tmp / "first.log", cache_dir=TEST_CACHE, force=True)
    report = check_image(store, first, spec, log_path=tmp / "check.log", cache_dir=TEST_CACHE)
    return Pair(first, report, store)


def test_every_artifact_has_the_same_sha256(pair: Pair) -> None:
    differing = [a.name for a in pair.check.artifacts if not a.matches]
    assert differing == [], f"not reproduced: {differing}"
    assert {a.name for a in pair.check.artifacts} == set(pair.first.artifacts)
    assert pair.check.matches


def test_the_same_packages_and_epoch(pair: Pair) -> None:
    rebuilt = pair.check.rebuilt
    assert rebuilt.packages == pair.first.packages
    assert rebuilt.inputs_sha256 == pair.first.inputs_sha256
    assert pair.first.source_date_epoch is not None
    assert rebuilt.source_date_epoch == pair.first.source_date_epoch


def test_the_check_commits_nothing(pair: Pair) -> None:
    assert [info.id for info in pair.store.list()] == [pair.first.id]
    assert not any(p.name.startswith("build-") for p in (pair.store.data_dir / "tmp").iterdir())


def test_files_in_the_image_carry_the_epoch(pair: Pair) -> None:
    image = pair.store.path(pair.first.id)
    assert isinstance(image, Path)
    head = (image / "root.squashfs").read_bytes()[:12]
    mkfs_time = int.from_bytes(head[8:12], "little")  # superblock: magic, inodes, mkfs_time
    assert mkfs_time == pair.first.source_date_epoch
