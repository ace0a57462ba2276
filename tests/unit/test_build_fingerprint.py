"""builder.fingerprint: the builder's own code and every file the spec names are part of
a build's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from livestrap.builder import fingerprint
from livestrap.spec import BuildSpec, parse_spec
from livestrap.specfields import HostDirs, HostFile, HostFiles, host_inputs

pytestmark = pytest.mark.unit

KEY = Path(__file__).resolve().parents[1] / "fixtures/keys/archive-test.asc"


def test_builder_hash_is_stable() -> None:
    assert fingerprint.builder_sha256() == fingerprint.builder_sha256()
    assert len(fingerprint.builder_sha256()) == 64


def test_edited_build_code_changes_the_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    spec, upstream = BuildSpec(), {"http://m/dists/s/InRelease": "ab"}
    before = fingerprint.inputs_sha256(spec, upstream)
    assert fingerprint.inputs_sha256(spec, upstream) == before
    monkeypatch.setattr(fingerprint, "builder_sha256", lambda: "0" * 64)
    assert fingerprint.inputs_sha256(spec, upstream) != before


@pytest.mark.security
def test_a_folder_mode_changes_the_inputs(tmp_path: Path) -> None:
    """The build copies an extra dir's folder modes into the image: a 0755 -> 0700 .ssh
    must not reuse the old image."""
    (tmp_path / "overlay/root/.ssh").mkdir(parents=True)
    spec = parse_spec({"extra_dirs": [str(tmp_path / "overlay")]})
    before = fingerprint.local_inputs(spec)
    (tmp_path / "overlay/root/.ssh").chmod(0o700)
    after = fingerprint.local_inputs(spec)
    assert before != after and after[str(tmp_path / "overlay/root/.ssh")] == "dir:700"


class FirmwareSpec(BuildSpec):
    """A spec grown a new file-valued field: no list in the fingerprint names it."""

    firmware: HostFile | None = None
    blobs: HostFiles = Field(default_factory=list)
    overlays: HostDirs = Field(default_factory=list)


def test_a_new_file_valued_field_is_in_the_inputs(tmp_path: Path) -> None:
    """A field the fingerprint was never told about: editing its file must not reuse the
    old image (the walk finds every field marked as naming a host file or folder)."""
    firmware, blob = tmp_path / "fw.bin", tmp_path / "blob.bin"
    (tmp_path / "more/lib").mkdir(parents=True)
    for path in (firmware, blob, tmp_path / "more/lib/x"):
        path.write_bytes(b"v1")
    data = {"firmware": "fw.bin", "blobs": ["blob.bin"], "overlays": ["more"]}
    spec = FirmwareSpec.model_validate(data, context={"base_dir": tmp_path})
    upstream = {"http://m/dists/s/InRelease": "ab"}
    inputs, before = fingerprint.local_inputs(spec), fingerprint.inputs_sha256(spec, upstream)
    assert set(inputs) == {str(firmware), str(blob), str(tmp_path / "more/lib"),
                           str(tmp_path / "more/lib/x")}  # fmt: skip
    for path in (firmware, blob, tmp_path / "more/lib/x"):
        path.write_bytes(b"v2")
        after = fingerprint.inputs_sha256(spec, upstream)
        assert after != before, path
        before = after


def test_every_host_path_of_the_spec_is_marked() -> None:
    """The spec's own file-valued fields, found by the same walk (a repo's key too)."""
    spec = parse_spec(
        {
            "mirror_key": str(KEY),
            "repos": [{"name": "a", "uri": "http://a.example/x", "suite": "s", "key": str(KEY)}],
            "extra_dirs": [str(KEY.parent)],
            "scripts": [str(KEY)],
        }
    )
    found = {(i.loc, str(i.value)) for i in host_inputs(spec)}
    assert found == {
        ("repos[0].uri", "http://a.example/x"),
        ("mirror_key", str(KEY)),
        ("repos[0].key", str(KEY)),
        ("extra_dirs", str(KEY.parent)),
        ("scripts", str(KEY)),
    }
