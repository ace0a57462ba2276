"""Real builds that must fail cleanly: unknown packages, and a build killed mid-install."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import TEST_CACHE, mounts_below, require_build_tools

pytestmark = pytest.mark.integration


def livestrap(*args: str, data_dir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, LIVESTRAP_CACHE_DIR=str(TEST_CACHE), COLUMNS="120")
    return subprocess.Popen(
        [sys.executable, "-m", "livestrap", *args, "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        # a test run started in the background (`make test &`) inherits SIGINT ignored;
        # the build under test must see Ctrl-C as an operator's terminal sends it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def assert_store_untouched(data_dir: Path) -> None:
    images = data_dir / "images"
    assert not images.exists() or list(images.iterdir()) == []
    tmp = data_dir / "tmp"
    assert not tmp.exists() or [p for p in tmp.iterdir() if p.name.startswith("build-")] == []
    assert mounts_below(data_dir) == []


def test_unknown_packages_are_all_named(tmp_path: Path) -> None:
    require_build_tools()
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({"packages": ["no-such-pkg-one", "python3", "no-such-pkg-2"]}))
    proc = livestrap("build", str(spec), data_dir=tmp_path / "data")
    out, _ = proc.communicate(timeout=600)
    assert proc.returncode == 1, out
    assert "2 package(s) not found" in out
    assert "no-such-pkg-one, no-such-pkg-2" in out
    assert_store_untouched(tmp_path / "data")


def wait_for_log(data_dir: Path, marker: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        logs = list((data_dir / "logs").glob("build-*.log")) if (data_dir / "logs").exists() else []
        if logs and marker in logs[0].read_text(errors="replace"):
            return
        time.sleep(0.5)
    raise AssertionError(f"{marker!r} not seen in the build log within {timeout_s}s")


@pytest.mark.parametrize(
    ("sig", "marker"),
    [
        (signal.SIGTERM, "Unpacking linux-image"),
        (signal.SIGINT, "installing remaining packages"),
    ],
)
def test_interrupted_build_leaves_no_mount_and_no_image(
    tmp_path: Path, sig: signal.Signals, marker: str
) -> None:
    require_build_tools()
    data_dir = tmp_path / "data"
    proc = livestrap("build", data_dir=data_dir)
    try:
        wait_for_log(data_dir, marker, timeout_s=300)
        time.sleep(1)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, out
    assert "cancelled" in out
    assert_store_untouched(data_dir)
    leftover = subprocess.run(
        ["pgrep", "-f", str(data_dir)], capture_output=True, text=True
    ).stdout.split()
    assert leftover == []
