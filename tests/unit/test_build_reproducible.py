"""builder.reproducible and builder.recheck: SOURCE_DATE_EPOCH comes from the inputs, and
`build --check` refuses when the inputs are no longer the same."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from livestrap.builder import reproducible, squashfs
from livestrap.builder.recheck import CHECK_STAGES, compare, refusal
from livestrap.release import parse_release
from livestrap.store.manifest import Artifact, ImageMetadata

pytestmark = pytest.mark.unit

INRELEASE = b"""-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Debian
Label: Debian
Suite: stable
Codename: bookworm
Date: Sat, 10 May 2025 08:53:43 UTC
Description: Debian 12.11 Released 17 May 2025
 MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCgAdFiEE
-----END PGP SIGNATURE-----
"""
RELEASE = b"Origin: Local\nLabel: lab\nSuite: alpha\nDate: Sun, 11 May 2025 00:00:01 +0000\n"


def test_parse_release_reads_a_clearsigned_inrelease() -> None:
    fields = parse_release(INRELEASE)
    assert (fields.origin, fields.label, fields.suite, fields.codename) == (
        "Debian",
        "Debian",
        "stable",
        "bookworm",
    )
    assert fields.date == datetime(2025, 5, 10, 8, 53, 43, tzinfo=UTC)


def test_parse_release_without_a_date() -> None:
    assert parse_release(b"Origin: x\n").date is None
    assert parse_release(b"Date: not a date\n").date is None


def test_epoch_is_the_newest_release_date() -> None:
    epoch = reproducible.source_date_epoch({"a": INRELEASE, "b": RELEASE})
    assert epoch == int(datetime(2025, 5, 11, 0, 0, 1, tzinfo=UTC).timestamp())
    assert reproducible.source_date_epoch({"b": RELEASE, "a": INRELEASE}) == epoch
    assert reproducible.source_date_epoch({"x": b"Origin: x\n"}) is None
    assert reproducible.source_date_epoch({}) is None


def test_build_env() -> None:
    assert reproducible.build_env(1700000000) == {"SOURCE_DATE_EPOCH": "1700000000"}
    assert reproducible.build_env(None) == {}


def test_mksquashfs_sets_every_time_to_the_epoch() -> None:
    argv = squashfs.mksquashfs_argv(Path("/r"), Path("/d"), "zstd", processors=1, epoch=42)
    i = argv.index("-mkfs-time")
    assert argv[i : i + 4] == ["-mkfs-time", "42", "-all-time", "42"]
    assert "-all-time" not in squashfs.mksquashfs_argv(Path("/r"), Path("/d"), "zstd")


def meta(inputs: str | None, initrd: str = "1", squash: str = "2") -> ImageMetadata:
    sums = {"vmlinuz": "0", "initrd.img": initrd, "root.squashfs": squash}
    return ImageMetadata(
        id="img-1",
        label="img",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        builder="livestrap test",
        distro="debian",
        suite="bookworm",
        arch="amd64",
        spec={},
        spec_sha256="0" * 64,
        kernel_version="6.1.0-1-amd64",
        kernel_cmdline=[],
        inputs_sha256=inputs,
        packages={},
        artifacts={k: Artifact(sha256=v, size=1) for k, v in sums.items()},
    )


def test_check_refuses_when_the_inputs_changed() -> None:
    assert refusal(meta("a" * 64), "a" * 64) is None
    assert "changed since it was built" in (refusal(meta("a" * 64), "b" * 64) or "")
    assert "cannot be fetched" in (refusal(meta("a" * 64), None) or "")
    assert "records no inputs hash" in (refusal(meta(None), "a" * 64) or "")
    incremental = meta("a" * 64).model_copy(update={"base_tree": "k" * 16})
    assert "built incrementally" in (refusal(incremental, "a" * 64) or "")


def test_compare_reports_each_artifact() -> None:
    same = compare(meta("a"), meta("a"))
    assert same.matches
    assert [a.name for a in same.artifacts] == ["initrd.img", "root.squashfs", "vmlinuz"]
    other = compare(meta("a"), meta("a", squash="9"))
    assert not other.matches
    assert [(a.name, a.matches) for a in other.artifacts] == [
        ("initrd.img", True),
        ("root.squashfs", False),
        ("vmlinuz", True),
    ]


def test_check_stages_never_commit() -> None:
    names = [name for name, _ in CHECK_STAGES]
    assert "commit" not in names and names[-1] == "check" and "squashfs" in names
