"""End-to-end fixtures: one real image per test session, real masters, real QEMU nodes.

The image is built into a data dir kept outside the repo (LIVESTRAP_TEST_CACHE); the
build reuses the stored image while nothing changed upstream, so only the first run on
a machine (or after an upstream change) pays for a build.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2ekit import BUILD_LOCK, VM_MAX_S, require_qemu
from helpers import TEST_CACHE, require_build_tools
from livestrap.netboot.qemu import NodeSpec
from livestrap.netboot.vm import VirtualNode
from livestrap.store.images import ImageStore
from masterproc import Master, free_port, master_process

E2E_DATA = TEST_CACHE / "e2e-data"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM ends the run like Ctrl-C, so fixtures still stop their nodes and masters
    (pytest's default for SIGTERM is to die without any teardown)."""
    signal.signal(signal.SIGTERM, _interrupt)


@pytest.fixture(scope="session")
def e2e_data_dir() -> Path:
    """A data dir whose active image is the default spec's (built or reused)."""
    require_build_tools()
    require_qemu()
    subprocess.run(
        ["flock", str(BUILD_LOCK), sys.executable, "-m", "livestrap", "build", "--activate",
         "--data-dir", str(E2E_DATA), "--cache-dir", str(TEST_CACHE)],
        check=True,
    )  # fmt: skip
    prune_images(E2E_DATA)
    return E2E_DATA


KEEP_IMAGES = 2  # besides the active one: what an edit of the builder and back reuses


def prune_images(data_dir: Path) -> list[str]:
    """Delete all but the active and the newest KEEP_IMAGES images: every edit of the
    builder makes a new one, and the kept data dir would otherwise grow by ~90 MB each."""
    store = ImageStore(data_dir)
    active = store.active_id()
    others = [info.id for info in store.list() if info.id != active]
    doomed = sorted(others, key=lambda i: store.get(i).created)[: -KEEP_IMAGES or None]
    for image_id in doomed:
        store.delete(image_id)
    return doomed


@pytest.fixture
def master(e2e_data_dir: Path, tmp_path: Path) -> Iterator[Master]:
    """A real master on the session's data dir, with a database of its own."""
    with master_process(
        e2e_data_dir,
        fake_builds=False,
        database_url=f"sqlite:///{tmp_path / 'master.db'}",
        port=free_port(),
    ) as m:
        yield m


@pytest.fixture
def boot_node(tmp_path: Path) -> Iterator[Any]:
    """Start virtual nodes against a master; all are stopped when the test ends."""
    started: list[VirtualNode] = []

    def start(spec: NodeSpec) -> VirtualNode:
        node = VirtualNode(spec, tmp_path / f"vm-{spec.name}-{len(started)}")
        node.start(max_s=VM_MAX_S)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()
