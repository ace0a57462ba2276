"""build.fingerprint: the builder's own code is part of a build's inputs."""

from __future__ import annotations

import pytest

from livestrap.build import fingerprint
from livestrap.spec import BuildSpec

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
