"""builder.fingerprint: the builder's own code and every file the spec names are part of
a build's inputs."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path, PurePosixPath
from typing import Annotated

import pytest
from pydantic import BaseModel, Field

from livestrap.builder import fingerprint
from livestrap.spec import BuildSpec, Repo, ResolvedSpec, parse_spec
from livestrap.specfields import HostDirs, HostFile, HostFiles, host_inputs, unmarked_paths

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


@pytest.mark.parametrize("model", [BuildSpec, ResolvedSpec, Repo])
def test_no_spec_field_names_a_path_without_a_mark(model: type[BaseModel]) -> None:
    """A field typed plain `Path`/`list[Path]` (no HostPath mark) would be left out of the
    fingerprint, and its file's edits would reuse a stale image: every one is marked."""
    assert unmarked_paths(model) == ()


class _Sub(BaseModel):
    blob: Path


class _Unmarked(BuildSpec):
    firmware: Path | None = None
    blobs: list[Path] = Field(default_factory=list)
    subs: list[_Sub] = Field(default_factory=list)
    pure: Annotated[PurePosixPath, Field(description="a path all the same")] | None = None


def test_unmarked_path_fields_are_found_and_refused() -> None:
    """The walk that guards the spec finds a plain Path anywhere in a type, in nested
    models too; the fingerprint refuses such a spec rather than miss the file."""
    assert unmarked_paths(_Unmarked) == ("firmware", "blobs", "subs.blob", "pure")
    with pytest.raises(TypeError, match=r"firmware, blobs, subs\.blob, pure"):
        fingerprint.local_inputs(_Unmarked())
    upstream = {"http://m/dists/s/InRelease": "ab"}
    with pytest.raises(TypeError, match="without a HostPath mark"):
        fingerprint.inputs_sha256(_Unmarked(), upstream)


def test_the_builder_hash_covers_what_decides_a_build() -> None:
    """Beyond builder/*.py: the spec's rules and defaults, the APT renderers, the overlay
    copy. Every livestrap module the builder imports is hashed or said not to decide."""
    src = Path(fingerprint.__file__).resolve().parents[1]
    hashed = {p.relative_to(src).as_posix() for p in fingerprint.builder_files()}
    assert all((src / name).is_file() for name in hashed)
    deciding = {
        "apt.py",
        "resolve.py",
        "spec.py",
        "specfields.py",
        "kernelopts.py",
        "fdpath.py",
        "release.py",
    }
    assert deciding <= hashed
    assert {p.relative_to(src).as_posix() for p in (src / "builder").glob("*.py")} <= hashed
    # what the builder imports that does not decide the image's contents
    not_deciding = {"errors", "run", "datadir", "store", "packaging", "__init__"}
    for py in (src / "builder").glob("*.py"):
        for node in ast.walk(ast.parse(py.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("livestrap"):
                parts = (node.module or "").split(".")
                top = parts[1] if len(parts) > 1 else "__init__"
                if top != "builder" and top not in not_deciding:
                    assert f"{top}.py" in hashed, f"{py.name} imports {node.module}"


def test_an_edit_of_the_spec_rules_changes_the_builder_hash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    src = Path(fingerprint.__file__).resolve().parents[1]
    before = fingerprint.builder_sha256()
    copy = tmp_path / "livestrap"
    shutil.copytree(src / "builder", copy / "builder")
    for name in fingerprint.DECIDING_MODULES:
        shutil.copy(src / name, copy / name)
    monkeypatch.setattr(fingerprint, "PACKAGE_DIR", copy)
    assert fingerprint.builder_sha256() == before
    (copy / "apt.py").write_text("# another rule\n", "utf-8")
    assert fingerprint.builder_sha256() != before
