"""`images verify` and `images sbom` on the store, the optional SBOM artifact through
commit, export and import, and images without one (older livestrap) still valid."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from store_helpers import add_image, artifact_bytes, image_members, make_metadata, member, write_tar
from typer.testing import CliRunner

from livestrap.cli import app, main
from livestrap.errors import ArchiveError, ImageNotFound, StoreError
from livestrap.store import bundle, images
from livestrap.store.bundle import export_image, import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, SBOM, dump_metadata, parse_metadata

pytestmark = pytest.mark.unit

SBOM_BYTES = b'{"bomFormat": "CycloneDX"}\n'


def run(data: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["images", *args, "--data-dir", str(data)])


def run_main(data: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `livestrap images ARGS`, as the script runs it."""
    argv = ["livestrap", "images", *args, "--data-dir", str(data)]
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "argv", argv)
        with pytest.raises(SystemExit) as exited:
            main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return code if isinstance(code, int) else 1, out, err


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    s = ImageStore(tmp_path / "data")
    add_image(s, "new-1", sbom=SBOM_BYTES)
    add_image(s, "old-1")
    return s


def test_verify_ok_then_tampered_and_missing(
    store: ImageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert store.verify("new-1") == {
        "vmlinuz": "ok", "initrd.img": "ok", "root.squashfs": "ok", SBOM: "ok",
    }  # fmt: skip
    result = run(store.data_dir, "verify", "new")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["FILE", "STATUS", "vmlinuz", "ok", "initrd.img", "ok",
                                     "root.squashfs", "ok", SBOM, "ok"]  # fmt: skip
    image = store.path("new-1")
    (image / "initrd.img").write_bytes(b"tampered, same size?")
    (image / SBOM).unlink()
    code, out, err = run_main(store.data_dir, capsys, "verify", "new-1", "-o", "json")
    assert code == 1
    assert json.loads(out) == {
        "id": "new-1",
        "ok": False,
        "files": {"vmlinuz": "ok", "initrd.img": "mismatch", "root.squashfs": "ok",
                  SBOM: "missing"},
    }  # fmt: skip
    assert err == (
        "error: image new-1 does not match its metadata: initrd.img mismatch, "
        "sbom.cdx.json missing\n"
    )


def test_same_size_tamper_is_a_mismatch(store: ImageStore) -> None:
    path = store.path("old-1") / "vmlinuz"
    data = path.read_bytes()
    path.write_bytes(bytes([data[0] ^ 1]) + data[1:])
    assert store.verify("old-1")["vmlinuz"] == "mismatch"
    assert run(store.data_dir, "verify", "old-1").exit_code == 1


def test_sbom_served_checked_and_absent(
    store: ImageStore, capsys: pytest.CaptureFixture[str]
) -> None:
    assert store.sbom("new-1") == SBOM_BYTES
    assert run(store.data_dir, "sbom", "new-1").stdout == SBOM_BYTES.decode()
    with pytest.raises(ImageNotFound, match="has no SBOM"):
        store.sbom("old-1")
    code, out, err = run_main(store.data_dir, capsys, "sbom", "old-1")
    assert (code, out) == (1, "") and "has no SBOM" in err
    (store.path("new-1") / SBOM).write_bytes(SBOM_BYTES.replace(b"C", b"X"))
    with pytest.raises(StoreError, match="does not match its sha256"):
        store.sbom("new-1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(images, "MAX_SBOM_SIZE", 10)
        with pytest.raises(StoreError, match="larger than 10 bytes"):
            store.sbom("new-1")


def test_old_metadata_without_sbom_still_loads(store: ImageStore) -> None:
    meta = store.get("old-1")
    assert SBOM not in meta.artifacts and meta.files() == (
        METADATA, "vmlinuz", "initrd.img", "root.squashfs",
    )  # fmt: skip
    assert [i.id for i in store.list()] == ["new-1", "old-1"]


def test_unknown_artifact_refused() -> None:
    text = dump_metadata(make_metadata("x", artifact_bytes("x")))
    extra = text.replace("artifacts:\n", "artifacts:\n  notes.txt:\n    sha256: ab\n    size: 2\n")
    assert extra != text
    with pytest.raises(StoreError, match=re.escape("optionally sbom.cdx.json")):
        parse_metadata(extra)


def test_commit_wants_exactly_what_metadata_lists(store: ImageStore, tmp_path: Path) -> None:
    staging = store.new_staging_dir("build-")
    files = artifact_bytes("c-1")
    for name, data in files.items():
        (staging / name).write_bytes(data)
    (staging / METADATA).write_text(dump_metadata(make_metadata("c-1", files)))
    (staging / SBOM).write_bytes(SBOM_BYTES)  # there, but unlisted: cannot be checked
    with pytest.raises(StoreError, match=re.escape("extra: sbom.cdx.json")):
        store.commit(staging, "c-1")
    (staging / SBOM).unlink()
    store.commit(staging, "c-1")
    assert store.verify("c-1") == dict.fromkeys(("vmlinuz", "initrd.img", "root.squashfs"), "ok")


def test_bundle_carries_and_checks_the_sbom(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "new.tar"
    export_image(store, "new-1", dest)
    target = ImageStore(tmp_path / "target")
    meta = import_image(target, dest)
    assert target.sbom(meta.id) == SBOM_BYTES
    # a bundle whose SBOM was swapped is refused, like any artifact
    files = {**artifact_bytes("bad-1"), SBOM: SBOM_BYTES}
    meta = make_metadata("bad-1", files)
    members = [member(f"bad-1/{METADATA}", dump_metadata(meta).encode())]
    members += [member(f"bad-1/{n}", d) for n, d in files.items() if n != SBOM]
    members.append(member(f"bad-1/{SBOM}", SBOM_BYTES.replace(b"C", b"X")))
    with pytest.raises(ArchiveError, match=re.escape("sbom.cdx.json': sha256 does not match")):
        import_image(target, write_tar(tmp_path / "bad.tar", members))
    # and one it does not list in its metadata cannot be checked, so it is refused
    members = [*image_members("odd-1"), member(f"odd-1/{SBOM}", SBOM_BYTES)]
    with pytest.raises(ArchiveError, match=re.escape("not listed in metadata.yaml")):
        import_image(target, write_tar(tmp_path / "odd.tar", members))
    # a bundle missing the SBOM its metadata lists is incomplete
    files = {**artifact_bytes("miss-1"), SBOM: SBOM_BYTES}
    meta = make_metadata("miss-1", files)
    members = [member(f"miss-1/{METADATA}", dump_metadata(meta).encode())]
    members += [member(f"miss-1/{n}", d) for n, d in files.items() if n != SBOM]
    with pytest.raises(ArchiveError, match=re.escape("missing sbom.cdx.json")):
        import_image(target, write_tar(tmp_path / "miss.tar", members))
    # nor may an SBOM be too big to serve from memory
    monkeypatch.setattr(bundle, "MAX_SBOM_SIZE", 10)
    files = {**artifact_bytes("big-1"), SBOM: SBOM_BYTES}
    members = [member(f"big-1/{METADATA}", dump_metadata(make_metadata("big-1", files)).encode())]
    members += [member(f"big-1/{n}", d) for n, d in files.items()]
    with pytest.raises(ArchiveError, match="larger than 10 bytes"):
        import_image(target, write_tar(tmp_path / "big.tar", members))
    assert [i.id for i in target.list()] == ["new-1"]
