"""The user's own tools keep the user's environment: QEMU found on the caller's PATH (as
`kvm_usable` finds it) and zstd tuned by ZSTD_*; shims on a temporary PATH record it."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from store_helpers import add_image, store_fixture  # noqa: F401  (provides the `store` fixture)

from livestrap.netboot import vm
from livestrap.netboot.qemu import NodeSpec
from livestrap.run import pipe, start
from livestrap.store import bundle
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit

# An option real QEMU refuses at once: if the real one runs instead of the shim, no VM starts.
NOT_REAL_QEMU = "-livestrap-test-shim"


def shim(bin_dir: Path, name: str, body: str) -> Path:
    """An executable `name` in `bin_dir`, put first on PATH; `$REC` is where it records."""
    bin_dir.mkdir(exist_ok=True)
    path = bin_dir / name
    path.write_text(f'#!/bin/sh\nREC="{bin_dir}/{name}.rec"\n{body}\n')
    path.chmod(0o755)
    return path


def recorded(path: Path) -> str:
    """What a shim recorded, once it has (it runs in its own process)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (path.exists() and path.read_text()):
        time.sleep(0.05)
    return path.read_text() if path.exists() else ""


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder first on the caller's PATH, as /opt/qemu/bin or ~/.local/bin would be."""
    path = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{path}:{os.environ['PATH']}")
    return path


def test_start_and_pipe_keep_the_clean_env_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESTRAP_USER_VAR", "mine")
    script = ["sh", "-c", 'echo "${LIVESTRAP_USER_VAR-none} $HOME ${X-}"']
    lines: list[str] = []
    for inherit in (False, True):
        with start(script, stage="vm", log=lines.append, env={"X": "x"}, inherit_env=inherit) as p:
            assert p.wait(timeout_s=10) == 0 and p.tail()
        with pipe(script, stage="bundle", inherit_env=inherit) as f:
            lines.append(f.stdout.read().decode().strip())
    home = os.environ.get("HOME", "")
    outputs = [line for line in lines if not line.startswith("$")]
    assert outputs == ["none /root x", "none /root", f"mine {home} x", f"mine {home}"]


@pytest.mark.parametrize("max_s", [None, 60])
def test_virtual_node_runs_the_qemu_on_the_callers_path(
    bin_dir: Path, tmp_path: Path, max_s: int | None
) -> None:
    qemu = shim(bin_dir, "qemu-system-x86_64", 'echo "$@" > "$REC"; exec sleep 30')
    node = vm.VirtualNode(NodeSpec(name="n1", extra=(NOT_REAL_QEMU,)), tmp_path / "n1")
    node.start(max_s=max_s)
    try:
        assert recorded(Path(f"{qemu}.rec")).split()[:3] == ["-name", "n1", "-accel"]
        assert node.running()
    finally:
        node.stop()
    assert not node.running()


def test_kvm_probe_runs_the_qemu_on_the_callers_path(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vm, "KVM_PROBE_S", 0.5)
    serial = tmp_path / "serial"
    body = f'echo "$@" > "$REC"; echo K > {serial}; exec sleep 30'
    qemu = shim(bin_dir, "qemu-system-x86_64", body)
    argv = ["qemu-system-x86_64", NOT_REAL_QEMU]

    def booted() -> bool:
        return serial.exists() and b"K" in serial.read_bytes()

    assert vm._probe(argv, tmp_path / "err", booted)
    assert recorded(Path(f"{qemu}.rec")).strip() == NOT_REAL_QEMU


def test_zstd_sees_the_callers_tuning(
    bin_dir: Path, tmp_path: Path, store: ImageStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which("zstd")
    if real is None:
        pytest.skip("zstd is not installed")
    zstd = shim(bin_dir, "zstd", f'env > "$REC"; exec {real} "$@"')
    monkeypatch.setenv("ZSTD_CLEVEL", "19")
    monkeypatch.setenv("ZSTD_NBTHREADS", "1")
    source = ImageStore(tmp_path / "source")
    add_image(source, "img1")
    dest = tmp_path / "img1.tar.zst"
    bundle.export_image(source, "img1", dest)
    env = recorded(Path(f"{zstd}.rec")).splitlines()
    assert "ZSTD_CLEVEL=19" in env and "ZSTD_NBTHREADS=1" in env
    assert bundle.import_image(store, dest) == source.get("img1")


def test_bundle_waits_for_zstd_as_long_as_it_takes(tmp_path: Path) -> None:
    with (tmp_path / "out").open("wb") as fh, bundle._zstd(["cat"], None, fh) as proc:
        assert proc.wait_s is None
