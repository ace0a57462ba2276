"""Fake images for the store and bundle tests: a few bytes per artifact, real checksums."""

from __future__ import annotations

import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from livestrap.store.images import ImageStore
from livestrap.store.manifest import (
    ARTIFACTS,
    METADATA,
    SBOM,
    Artifact,
    ImageMetadata,
    dump_metadata,
)

BASE_TIME = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(name="store")
def store_fixture(tmp_path: Path) -> ImageStore:
    """An empty store; import as `store_fixture`, request as `store`."""
    return ImageStore(tmp_path / "data")


def artifact_bytes(image_id: str) -> dict[str, bytes]:
    """Distinct small contents per image, so mixing two images up is detected."""
    return {name: f"{name} of {image_id}\n".encode() for name in ARTIFACTS}


def make_metadata(
    image_id: str,
    files: dict[str, bytes],
    *,
    created: datetime = BASE_TIME,
    packages: dict[str, str] | None = None,
) -> ImageMetadata:
    return ImageMetadata(
        id=image_id,
        label=f"label {image_id}",
        created=created,
        builder="livestrap 0.1.0",
        distro="debian",
        suite="bookworm",
        arch="amd64",
        spec={"suite": "bookworm"},
        spec_sha256="0" * 64,
        kernel_version="6.1.0-test",
        kernel_cmdline=["console=ttyS0"],
        packages=packages if packages is not None else {"bash": "5.2"},
        artifacts={
            name: Artifact(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            for name, data in files.items()
        },
    )


def write_image_dir(
    parent: Path,
    image_id: str,
    *,
    created: datetime = BASE_TIME,
    packages: dict[str, str] | None = None,
    dirname: str | None = None,
    sbom: bytes | None = None,
) -> ImageMetadata:
    """A complete image directory parent/<dirname or id>, as a build would leave it
    (`sbom`: with that as its sbom.cdx.json; default: none, as older images)."""
    files = artifact_bytes(image_id)
    if sbom is not None:
        files[SBOM] = sbom
    meta = make_metadata(image_id, files, created=created, packages=packages)
    image_dir = parent / (dirname or image_id)
    image_dir.mkdir(parents=True)
    for name, data in files.items():
        (image_dir / name).write_bytes(data)
    (image_dir / METADATA).write_text(dump_metadata(meta))
    return meta


def add_image(
    store: ImageStore,
    image_id: str,
    *,
    created: datetime = BASE_TIME,
    packages: dict[str, str] | None = None,
    sbom: bytes | None = None,
) -> ImageMetadata:
    """Put an image straight into images/, bypassing commit (for read-side tests)."""
    return write_image_dir(
        store.images_dir, image_id, created=created, packages=packages, sbom=sbom
    )


def snapshot(store: ImageStore) -> dict[str, bytes | None]:
    """Everything under images/ (None for dirs), to show a refused operation changed nothing."""
    if not store.images_dir.exists():
        return {}
    return {
        str(p.relative_to(store.images_dir)): None if p.is_dir() else p.read_bytes()
        for p in sorted(store.images_dir.rglob("*"))
    }


def tmp_entries(store: ImageStore) -> list[str]:
    return sorted(p.name for p in store.tmp_dir.iterdir()) if store.tmp_dir.exists() else []


Member = tuple[tarfile.TarInfo, bytes | None]


def member(name: str, data: bytes | None = b"", **attrs: object) -> Member:
    """A tar member; attrs set TarInfo fields (type, linkname, ...)."""
    info = tarfile.TarInfo(name)
    info.size = len(data) if data is not None else 0
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def image_members(image_id: str, meta: ImageMetadata | None = None) -> list[Member]:
    """The members of a well-formed bundle for a fake image, metadata first."""
    files = artifact_bytes(image_id)
    meta = meta or make_metadata(image_id, files)
    members = [member(f"{image_id}/{METADATA}", dump_metadata(meta).encode())]
    members += [member(f"{image_id}/{name}", data) for name, data in files.items()]
    return members


def write_tar(path: Path, members: list[Member]) -> Path:
    """An uncompressed tar holding exactly these members, however malicious."""
    with tarfile.open(path, "w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


class Zeros(io.RawIOBase):
    """`n` zero bytes to read, never held in memory (a bomb's big member)."""

    def __init__(self, n: int) -> None:
        self.left = n

    def read(self, size: int = -1) -> bytes:
        n = self.left if size < 0 else min(size, self.left)
        self.left -= n
        return bytes(n)


OLD_CMDLINE = "kernel_cmdline:\n- console=ttyS0\n- foo=$bar\n"
OLD_SPEC = "spec:\n  suite: bookworm\n  kernel_options:\n  - foo=$bar\n"


def old_style(store: ImageStore, image_id: str = "old-1", inputs: str | None = None) -> Path:
    """An image as an older livestrap stored it: `foo=$bar` on its kernel line and in the
    spec it records (both refused by today's rules)."""
    add_image(store, image_id)
    path = store.images_dir / image_id / METADATA
    text = path.read_text()
    text = text.replace("kernel_cmdline:\n- console=ttyS0\n", OLD_CMDLINE)
    text = text.replace("spec:\n  suite: bookworm\n", OLD_SPEC)
    if inputs:
        text = text.replace("inputs_sha256: null", f"inputs_sha256: {inputs}")
    assert OLD_CMDLINE in text and OLD_SPEC in text
    path.write_text(text)
    return path
