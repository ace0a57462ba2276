"""build.fingerprint: the builder's own code is part of a build's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.builder import fingerprint
from livestrap.spec import BuildSpec, parse_spec

pytestmark = pytest.mark.unit


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
