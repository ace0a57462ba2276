"""Bundles: export→import round trips, and import refusing every kind of hostile archive."""

from __future__ import annotations

import gzip
import lzma
import subprocess
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from store_helpers import (
    Member,
    add_image,
    artifact_bytes,
    image_members,
    make_metadata,
    member,
    snapshot,
    store_fixture,  # noqa: F401  (provides the `store` fixture)
    tmp_entries,
    write_tar,
)

from livestrap.errors import ArchiveError, StoreError
from livestrap.store.bundle import Compression, compression_for, export_image, import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import IMAGE_FILES

pytestmark = pytest.mark.unit

SUFFIX = {"none": ".tar", "gz": ".tar.gz", "xz": ".tar.xz", "zst": ".tar.zst"}
MAGIC = {"gz": b"\x1f\x8b", "xz": b"\xfd7zXZ\x00", "zst": b"\x28\xb5\x2f\xfd"}


@pytest.fixture
def source(tmp_path: Path) -> ImageStore:
    """Another store holding image img1, to export from."""
    src = ImageStore(tmp_path / "source")
    add_image(src, "img1", packages={"bash": "5.2", "curl": "7.88"})
    return src


def _tar_bytes(path: Path) -> bytes:
    """The uncompressed tar inside a bundle, whatever its compression."""
    data = path.read_bytes()
    if data.startswith(MAGIC["zst"]):
        return subprocess.run(["zstd", "-d", "-c"], input=data, capture_output=True).stdout
    if data.startswith(MAGIC["gz"]):
        return gzip.decompress(data)
    if data.startswith(MAGIC["xz"]):
        return lzma.decompress(data)
    return data


@pytest.mark.parametrize("compression", ["none", "gz", "xz", "zst"])
def test_round_trip(
    source: ImageStore, store: ImageStore, tmp_path: Path, compression: Compression
) -> None:
    dest = tmp_path / f"img1{SUFFIX[compression]}"
    export_image(source, "img1", dest)
    assert dest.read_bytes().startswith(MAGIC.get(compression, b""))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    meta = import_image(store, dest)
    assert meta == source.get("img1") == store.get("img1")
    for name in IMAGE_FILES:
        assert (store.path("img1") / name).read_bytes() == (source.path("img1") / name).read_bytes()
    assert tmp_entries(store) == []


@pytest.mark.parametrize("compression", ["none", "gz", "xz", "zst"])
def test_export_is_deterministic_and_clean(
    source: ImageStore, tmp_path: Path, compression: Compression
) -> None:
    first, second = tmp_path / "a.bundle", tmp_path / "b.bundle"
    export_image(source, "img1", first, compression)
    export_image(source, "img1", second, compression)
    assert first.read_bytes() == second.read_bytes()

    (tmp_path / "plain.tar").write_bytes(_tar_bytes(first))
    with tarfile.open(tmp_path / "plain.tar") as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == [
        "img1/metadata.yaml",
        "img1/vmlinuz",
        "img1/initrd.img",
        "img1/root.squashfs",
    ]
    for m in members:
        assert m.isreg()
        assert (m.mode, m.uid, m.gid) == (0o644, 0, 0)


def test_compression_from_suffix() -> None:
    assert compression_for(Path("x.tgz")) == "gz"
    assert compression_for(Path("x.TAR.ZST")) == "zst"
    assert compression_for(Path("x.tar")) == "none"
    with pytest.raises(ArchiveError, match="cannot tell compression"):
        compression_for(Path("x.zip"))


def test_export_refuses_corrupt_image(source: ImageStore, tmp_path: Path) -> None:
    (source.path("img1") / "vmlinuz").write_bytes(b"vmlinuz of IMG1\n")  # same size
    with pytest.raises(StoreError, match="vmlinuz does not match its sha256"):
        export_image(source, "img1", tmp_path / "out.tar")
    assert list(tmp_path.glob("*out.tar*")) == []


def test_import_refuses_existing_id(source: ImageStore, store: ImageStore, tmp_path: Path) -> None:
    export_image(source, "img1", tmp_path / "b.tar.zst")
    import_image(store, tmp_path / "b.tar.zst")
    before = snapshot(store)
    with pytest.raises(StoreError, match="img1 already exists"):
        import_image(store, tmp_path / "b.tar.zst")
    assert snapshot(store) == before
    assert tmp_entries(store) == []


def _replace(members: list[Member], name: str, new: Member) -> list[Member]:
    return [new if info.name == name else (info, data) for info, data in members]


def _with_meta(**changes: object) -> list[Member]:
    files = artifact_bytes("img1")
    meta = make_metadata("img1", files).model_copy(update=changes)
    return image_members("img1", meta)


def _bad_artifact(name: str, **fields: object) -> list[Member]:
    meta = make_metadata("img1", artifact_bytes("img1"))
    art = meta.artifacts[name].model_copy(update=fields)
    return image_members(
        "img1", meta.model_copy(update={"artifacts": {**meta.artifacts, name: art}})
    )


GOOD = image_members("img1")
CASES: dict[str, tuple[Callable[[], list[Member]], str]] = {
    "absolute path": (lambda: [member("/img1/vmlinuz", b"x"), *GOOD], "absolute path"),
    "dotdot traversal": (
        lambda: [*GOOD, member("img1/../../escaped", b"x")],
        r"'img1/\.\./\.\./escaped'.*traversal",
    ),
    "symlink escape": (
        lambda: _replace(
            GOOD,
            "img1/vmlinuz",
            member("img1/vmlinuz", None, type=tarfile.SYMTYPE, linkname="../../../etc/passwd"),
        ),
        "'img1/vmlinuz': symlink",
    ),
    "hardlink escape": (
        lambda: _replace(
            GOOD,
            "img1/vmlinuz",
            member("img1/vmlinuz", None, type=tarfile.LNKTYPE, linkname="/etc/passwd"),
        ),
        "'img1/vmlinuz': hardlink",
    ),
    "char device": (
        lambda: [*GOOD, member("img1/console", None, type=tarfile.CHRTYPE, devmajor=5)],
        "'img1/console': device file",
    ),
    "block device": (
        lambda: [*GOOD, member("img1/sda", None, type=tarfile.BLKTYPE, devmajor=8)],
        "'img1/sda': device file",
    ),
    "fifo": (
        lambda: [*GOOD, member("img1/pipe", None, type=tarfile.FIFOTYPE)],
        "'img1/pipe': fifo",
    ),
    "extra file": (lambda: [*GOOD, member("img1/extra", b"x")], "'img1/extra': not an image"),
    "nested directory": (
        lambda: [*GOOD, member("img1/sub", None, type=tarfile.DIRTYPE)],
        "'img1/sub': unexpected directory",
    ),
    "nested file": (lambda: [*GOOD, member("img1/sub/vmlinuz", b"x")], "not of the form"),
    "duplicate": (lambda: [*GOOD, GOOD[1]], "'img1/vmlinuz': duplicate"),
    "missing file": (
        lambda: [m for m in GOOD if m[0].name != "img1/initrd.img"],
        "missing initrd.img",
    ),
    "missing metadata": (lambda: GOOD[1:], "metadata.yaml must come first"),
    "empty archive": (lambda: [], "missing|empty"),
    "wrong sha256": (
        lambda: _bad_artifact("root.squashfs", sha256="f" * 64),
        "'img1/root.squashfs': sha256",
    ),
    "wrong size, metadata first": (
        lambda: _bad_artifact("initrd.img", size=3),
        "'img1/initrd.img': size .* does not match metadata",
    ),
    "wrong size, metadata last": (
        lambda: [*_bad_artifact("initrd.img", size=3)[1:], _bad_artifact("initrd.img", size=3)[0]],
        "metadata.yaml must come first",
    ),
    "two top dirs": (
        lambda: [*GOOD, *image_members("img2")],
        "'img2/metadata.yaml': second top-level directory",
    ),
    "top dir entry of another image": (
        lambda: [
            member("img1", None, type=tarfile.DIRTYPE),
            member("img2", None, type=tarfile.DIRTYPE),
        ],
        "second top-level directory",
    ),
    "id mismatch": (
        lambda: _with_meta(id="img2"),
        "metadata id 'img2' does not match top-level directory 'img1'",
    ),
    "invalid top dir": (lambda: [member(".hidden/vmlinuz", b"x")], "not a valid image id"),
    "bad metadata": (
        lambda: _replace(GOOD, "img1/metadata.yaml", member("img1/metadata.yaml", b"id: [")),
        "not valid image metadata",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_import_refuses(store: ImageStore, tmp_path: Path, case: str) -> None:
    make_members, message = CASES[case]
    add_image(store, "old")
    before = snapshot(store)
    bundle = write_tar(tmp_path / "evil.tar", make_members())
    with pytest.raises(ArchiveError, match=message):
        import_image(store, bundle)
    assert snapshot(store) == before
    assert tmp_entries(store) == []
    assert not (tmp_path / "escaped").exists()


def test_import_accepts_top_dir_entry(store: ImageStore, tmp_path: Path) -> None:
    members = [member("img1", None, type=tarfile.DIRTYPE, mode=0o755), *image_members("img1")]
    meta = import_image(store, write_tar(tmp_path / "ok.tar", members))
    assert meta.id == "img1"
    assert sorted(p.name for p in store.path("img1").iterdir()) == sorted(IMAGE_FILES)


@pytest.mark.parametrize("compression", ["gz", "xz", "zst"])
def test_import_refuses_truncated_compressed_bundle(
    source: ImageStore, store: ImageStore, tmp_path: Path, compression: Compression
) -> None:
    bundle = tmp_path / f"img1{SUFFIX[compression]}"
    export_image(source, "img1", bundle)
    data = bundle.read_bytes()
    bundle.write_bytes(data[: len(data) // 2])
    with pytest.raises(ArchiveError):
        import_image(store, bundle)
    assert snapshot(store) == {}
    assert tmp_entries(store) == []


def test_import_refuses_hostile_member_in_zstd_stream(store: ImageStore, tmp_path: Path) -> None:
    evil = [*GOOD, member("img1/link", None, type=tarfile.SYMTYPE, linkname="/etc")]
    plain = write_tar(tmp_path / "evil.tar", evil)
    subprocess.run(["zstd", "-q", "--rm", str(plain)], check=True)
    with pytest.raises(ArchiveError, match="'img1/link': symlink"):
        import_image(store, tmp_path / "evil.tar.zst")
    assert snapshot(store) == {}
    assert tmp_entries(store) == []


def test_import_refuses_non_tar_and_missing_file(store: ImageStore, tmp_path: Path) -> None:
    (tmp_path / "junk.tar").write_bytes(b"this is not a tar archive" * 100)
    with pytest.raises(ArchiveError, match="cannot read bundle"):
        import_image(store, tmp_path / "junk.tar")
    with pytest.raises(ArchiveError, match="cannot open"):
        import_image(store, tmp_path / "absent.tar")
    assert tmp_entries(store) == []
