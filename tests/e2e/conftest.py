"""End-to-end fixtures: one real image per test session, real masters, real QEMU nodes.

The image is built into a data dir kept outside the repo (LIVESTRAP_TEST_CACHE); the
build reuses the stored image while nothing changed upstream, so only the first run on
a machine (or after an upstream change) pays for a build.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import TEST_CACHE, require_build_tools, require_commands
from livestrap.netboot.qemu import NodeSpec
from livestrap.netboot.vm import VirtualNode
from masterproc import Master, free_port, master_process

E2E_DATA = TEST_CACHE / "e2e-data"
# Held around every image build on this machine (bench/tools.py takes the same lock):
# two builds at once on 2 cores would slow and measure each other.
BUILD_LOCK = Path("/run/lock/livestrap-build.lock")
REGISTER_TIMEOUT_S = float(os.environ.get("LIVESTRAP_E2E_TIMEOUT", "420"))
# Every node is also bounded by coreutils' timeout, so a run killed before its teardown
# (SIGKILL, a CI timeout) leaves no QEMU behind for long.
VM_MAX_S = int(REGISTER_TIMEOUT_S) + 600


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM ends the run like Ctrl-C, so fixtures still stop their nodes and masters
    (pytest's default for SIGTERM is to die without any teardown)."""
    signal.signal(signal.SIGTERM, _interrupt)


def require_qemu() -> None:
    require_commands("qemu-system-x86_64", "socat")


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
    return E2E_DATA


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


def wait_for(
    what: str, check: Any, node: VirtualNode, timeout_s: float = REGISTER_TIMEOUT_S
) -> Any:
    """Poll `check()` until it returns something truthy; fail with the console's tail."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.TransportError:
            result = None
        if result:
            return result
        if not node.running():
            break
        time.sleep(2)
    tail = "\n".join(node.console().splitlines()[-40:])
    pytest.fail(f"{what}: not within {timeout_s:.0f} s (node running: {node.running()})\n{tail}")


def registered_node(master: Master, mac: str) -> dict[str, Any] | None:
    with master.admin() as client:
        listed = client.get("/api/v1/nodes", params={"mac": mac}).json()
        if not listed:
            return None
        node: dict[str, Any] = client.get(f"/api/v1/nodes/{listed[0]['id']}").json()
        return node
