"""What the e2e tests share besides fixtures (tests/e2e/conftest.py): the machine's build
lock, the registration timeout, polling a node. A module of its own, because every tests/
folder has a conftest.py and `from conftest import` takes whichever was imported first."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import require_commands
from livestrap.netboot.vm import VirtualNode
from masterproc import Master

# Held around every image build on this machine (bench/tools.py takes the same lock):
# two builds at once on 2 cores would slow and measure each other.
BUILD_LOCK = Path("/run/lock/livestrap-build.lock")
REGISTER_TIMEOUT_S = float(os.environ.get("LIVESTRAP_E2E_TIMEOUT", "420"))
# Every node is also bounded by coreutils' timeout, so a run killed before its teardown
# (SIGKILL, a CI timeout) leaves no QEMU behind for long.
VM_MAX_S = int(REGISTER_TIMEOUT_S) + 600


def require_qemu() -> None:
    require_commands("qemu-system-x86_64", "socat")


def wait_for(
    what: str,
    check: Any,
    node: VirtualNode,
    timeout_s: float = REGISTER_TIMEOUT_S,
    about: Any = None,
) -> Any:
    """Poll `check()` until it returns something truthy; fail with the console's tail
    (and what `about()` says, when given)."""
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
    said = f"\n{about()}" if about is not None else ""
    pytest.fail(
        f"{what}: not within {timeout_s:.0f} s (node running: {node.running()}){said}\n{tail}"
    )


def registered_node(master: Master, mac: str) -> dict[str, Any] | None:
    with master.admin() as client:
        listed = client.get("/api/v1/nodes", params={"mac": mac}).json()
        if not listed:
            return None
        node: dict[str, Any] = client.get(f"/api/v1/nodes/{listed[0]['id']}").json()
        return node


def clone_data_dir(src: Path, dst: Path) -> Path:
    """A data dir of the test's own with `src`'s keys, tokens, repository and active image
    (hard links where the filesystem allows): a test that publishes to the repository
    must not change the session's (its next build would take what was published)."""
    dst.mkdir(parents=True)
    skip = {"images", "logs", "tmp"}
    for entry in src.iterdir():
        if entry.name not in skip and not entry.name.endswith(".lock"):
            subprocess.run(["cp", "-a", str(entry), str(dst / entry.name)], check=True)
    active = (src / "active").resolve()
    (dst / "images").mkdir()
    target = dst / "images" / active.name
    if subprocess.run(["cp", "-al", str(active), str(target)], capture_output=True).returncode:
        shutil.rmtree(target, ignore_errors=True)
        subprocess.run(["cp", "-a", str(active), str(target)], check=True)
    return dst
