"""Image files are hashed once per version before they are served (master/verified.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from livestrap.master import verified
from livestrap.master.verified import UnverifiedFile, VerifiedFiles

pytestmark = pytest.mark.unit


def test_hashed_once_per_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "root.squashfs"
    path.write_bytes(b"squash")
    good = hashlib.sha256(b"squash").hexdigest()
    hashed: list[Path] = []
    real = verified.sha256_file

    def counting(p: Path) -> str:
        hashed.append(p)
        return real(p)

    monkeypatch.setattr(verified, "sha256_file", counting)
    files = VerifiedFiles()
    files.check(path, os.stat(path), good, "img's root.squashfs")
    files.check(path, os.stat(path), good, "img's root.squashfs")
    assert hashed == [path]  # the second request costs a dict lookup

    path.write_bytes(b"tampered")  # a new version (size, mtime): hashed again, refused
    with pytest.raises(UnverifiedFile, match="does not match its manifest"):
        files.check(path, os.stat(path), good, "img's root.squashfs")
    with pytest.raises(UnverifiedFile):  # and again: a mismatch is never remembered as good
        files.check(path, os.stat(path), good, "img's root.squashfs")
    assert len(hashed) == 3


def test_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "vmlinuz"
    path.write_bytes(b"k")
    st = os.stat(path)
    path.unlink()
    with pytest.raises(UnverifiedFile, match="cannot read"):
        VerifiedFiles().check(path, st, "0" * 64, "img's vmlinuz")
