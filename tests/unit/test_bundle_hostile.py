"""Bundles built to exhaust the master (issue 11): decompression bombs, oversized pax
headers (CVE-2024-6232), bundles over the import limit or the free space."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import (
    Member,
    Zeros,
    image_members,
    member,
    snapshot,
    store_fixture,  # noqa: F401  (provides the `store` fixture)
    tmp_entries,
    write_tar,
)

from livestrap.errors import ArchiveError
from livestrap.store import limits
from livestrap.store.bundle import import_image
from livestrap.store.images import ImageStore
from livestrap.store.limits import InsufficientSpace, max_image_bytes
from livestrap.store.targuard import MAX_EXT_HEADER, pax_size, tarfile_has_header_redos

pytestmark = [pytest.mark.unit, pytest.mark.security]

BOMB_BYTES = 256 << 20


def _written() -> int:
    """Bytes this process has written (files and pipes), from /proc/self/io."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


def _zeros(n: int) -> Iterator[bytes]:
    block = bytes(1 << 20)
    while n > 0:
        yield block[: min(n, len(block))]
        n -= len(block)


def _zstd_bomb(path: Path, head: list[Member], zeros_name: str | None, tail: int = 0) -> Path:
    """A .tar.zst: `head` members, then (if named) a member of BOMB_BYTES zeros, then
    `tail` zero bytes after the tar; streamed into zstd, so the test never holds the bomb."""
    with path.open("wb") as out:
        proc = subprocess.Popen(["zstd", "-q", "-c"], stdin=subprocess.PIPE, stdout=out)
        assert proc.stdin is not None
        with tarfile.open(fileobj=proc.stdin, mode="w|") as tar:
            for info, data in head:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
            if zeros_name:
                info = tarfile.TarInfo(zeros_name)
                info.size = BOMB_BYTES
                tar.addfile(info, Zeros(BOMB_BYTES))
        for chunk in _zeros(tail):
            proc.stdin.write(chunk)
        proc.stdin.close()
        assert proc.wait() == 0
    assert path.stat().st_size < 100_000
    return path


def _refused(store: ImageStore, bundle: Path, message: str, **kw: int) -> tuple[int, float]:
    """Import must refuse; returns (bytes written meanwhile, seconds taken)."""
    before, written, started = snapshot(store), _written(), time.monotonic()
    with pytest.raises(ArchiveError, match=message):
        import_image(store, bundle, **kw)
    took, wrote = time.monotonic() - started, _written() - written
    assert snapshot(store) == before
    assert tmp_entries(store) == []
    return wrote, took


def test_zstd_bomb_metadata_last_writes_nothing(store: ImageStore, tmp_path: Path) -> None:
    """The old code wrote 2 GB before refusing; metadata must now come first."""
    head = [m for m in image_members("img1") if not m[0].name.endswith(".yaml")]
    bundle = _zstd_bomb(tmp_path / "bomb.tar.zst", head[:1], "img1/root.squashfs")
    wrote, took = _refused(store, bundle, "metadata.yaml must come first")
    assert wrote < 1 << 20
    assert took < 5


def test_zstd_bomb_member_larger_than_declared(store: ImageStore, tmp_path: Path) -> None:
    good = image_members("img1")
    bundle = _zstd_bomb(tmp_path / "bomb.tar.zst", good[:3], "img1/root.squashfs")
    wrote, took = _refused(store, bundle, r"root.squashfs'.*size .* does not match metadata")
    assert wrote < 1 << 20
    assert took < 5


def test_zstd_bomb_after_the_tar_end(store: ImageStore, tmp_path: Path) -> None:
    """Bytes after the end-of-archive blocks: zstd is drained only a little, then killed."""
    bundle = _zstd_bomb(tmp_path / "bomb.tar.zst", image_members("img1"), None, BOMB_BYTES)
    wrote, took = _refused(store, bundle, "after its tar archive")
    assert wrote < 4 << 20  # of 256 MiB (wchar counts pipe traffic too)
    assert took < 5


def test_declared_size_over_the_cap(store: ImageStore, tmp_path: Path) -> None:
    bundle = write_tar(tmp_path / "big.tar", image_members("img1"))
    _refused(store, bundle, "the limit is 10", max_bytes=10)


def test_cap_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert max_image_bytes({}) == 16 << 30
    assert max_image_bytes({"LIVESTRAP_MAX_IMPORT_BYTES": "2G"}) == 2 << 30
    assert max_image_bytes({"LIVESTRAP_MAX_IMPORT_BYTES": "1048576"}) == 1 << 20
    for bad in ("0", "-1", "2X", "1.5G", "G"):
        with pytest.raises(Exception, match="LIVESTRAP_MAX_IMPORT_BYTES"):
            max_image_bytes({"LIVESTRAP_MAX_IMPORT_BYTES": bad})


def test_not_enough_free_space(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = write_tar(tmp_path / "ok.tar", image_members("img1"))
    real = os.statvfs

    class Full:
        def __init__(self, st: os.statvfs_result) -> None:
            self.f_frsize, self.f_bavail = st.f_frsize, 1

    monkeypatch.setattr(limits.os, "statvfs", lambda p: Full(real(p)))
    with pytest.raises(InsufficientSpace, match="not enough free space"):
        import_image(store, bundle)
    assert snapshot(store) == {}
    assert tmp_entries(store) == []


def test_repeated_top_dir_entries_refused(store: ImageStore, tmp_path: Path) -> None:
    top = member("img1", None, type=tarfile.DIRTYPE)
    bundle = write_tar(tmp_path / "dirs.tar", [top, top, *image_members("img1")])
    _refused(store, bundle, "'img1': duplicate member")


def _record(key: str, value: str) -> bytes:
    """One pax record, `LEN key=value\n`, LEN counting itself."""
    body = f" {key}={value}\n".encode()
    n = len(body) + 1
    while len(str(n)) + len(body) != n:
        n += 1
    return str(n).encode() + body


def _pax_block(data: bytes) -> bytes:
    info = tarfile.TarInfo("././@PaxHeader")
    info.type, info.size = tarfile.XHDTYPE, len(data)
    return info.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512)


def _pax_tar(path: Path, headers: list[bytes], members: list[Member]) -> Path:
    """A tar whose first member is preceded by each of `headers` as a pax header block."""
    inner = write_tar(path.with_suffix(".inner"), members).read_bytes()
    path.write_bytes(b"".join(_pax_block(h) for h in headers) + inner)
    return path


def test_oversized_pax_header_refused_before_tarfile(store: ImageStore, tmp_path: Path) -> None:
    """CVE-2024-6232: a 160 KiB header took tarfile 10 s on this Python."""
    crafted = b"0 " + b"0" * (160 << 10)
    bundle = _pax_tar(tmp_path / "redos.tar", [crafted], image_members("img1"))
    _, took = _refused(store, bundle, f"pax header of .* bytes .*at most {MAX_EXT_HEADER}")
    assert took < 1


def test_chained_pax_headers_refused(store: ImageStore, tmp_path: Path) -> None:
    headers = [_record("comment", f"c{i}") for i in range(3)]
    bundle = _pax_tar(tmp_path / "chain.tar", headers, image_members("img1"))
    _refused(store, bundle, "chained extended headers")


def test_small_pax_header_accepted(store: ImageStore, tmp_path: Path) -> None:
    bundle = _pax_tar(tmp_path / "pax.tar", [_record("comment", "made")], image_members("img1"))
    assert import_image(store, bundle).id == "img1"


def test_gnu_long_name_over_the_limit_refused(store: ImageStore, tmp_path: Path) -> None:
    path = tmp_path / "gnu.tar"
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo("img1/" + "x" * (MAX_EXT_HEADER + 10))
        tar.addfile(info, io.BytesIO(b""))
    _refused(store, path, "GNU long name header")


def test_pax_size_records() -> None:
    assert pax_size(_record("comment", "hello") + _record("size", "42"), 0) == 42
    assert pax_size(b"12 path=abc\n", 0) is None
    for bad in (b"99 size=1\n", b"x size=1\n", b"11 size=4x\n", b"8 nokey\n"):
        with pytest.raises(ArchiveError, match="pax"):
            pax_size(bad, 0)


def test_interpreter_check() -> None:
    assert tarfile_has_header_redos((3, 11, 7))
    assert tarfile_has_header_redos((3, 12, 5))
    assert not tarfile_has_header_redos((3, 11, 10))
    assert not tarfile_has_header_redos((3, 12, 6))
    assert not tarfile_has_header_redos((3, 13, 0))
