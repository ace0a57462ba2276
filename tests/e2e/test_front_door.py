"""The front door, as a new user meets it: `make demo` twice, `make demo-stop`, then every
example in the README run as written (only the data dir and the port substituted).

One data dir for the whole module: the first `make demo` builds the default image into it
(the package cache is the test session's), everything after reuses it.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from e2ekit import BUILD_LOCK, REGISTER_TIMEOUT_S, require_qemu
from helpers import TEST_CACHE, mounts_below, require_build_tools
from masterproc import free_port
from readme import README, blocks

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DEFAULT_PORT = "8080"
DEFAULT_DATA_DIR = "/var/lib/livestrap"
# A build (cold package cache: a few minutes) plus one TCG boot.
DEMO_TIMEOUT_S = 900 + REGISTER_TIMEOUT_S


@dataclass
class Place:
    """A data dir and a port, as a user would pick them; the environment a user has."""

    data_dir: Path
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESTRAP_")}
        env.update(
            LIVESTRAP_DATA_DIR=str(self.data_dir),
            LIVESTRAP_DEMO_PORT=str(self.port),
            LIVESTRAP_CACHE_DIR=str(TEST_CACHE),  # the session's package cache, not a cold one
            PATH=f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        )
        return env

    def make(self, target: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["make", "--no-print-directory", "-C", str(REPO), target]
        if target == "demo":  # it may build: never beside another build on this machine
            argv = ["flock", "--close", str(BUILD_LOCK), *argv]
        return subprocess.run(
            argv, env=self.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, timeout=timeout_s, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    def leftovers(self) -> list[str]:
        """What still runs or is mounted for this place: master, QEMU, mounts, the port."""
        found = []
        for pidfile in [self.data_dir / "master.pid", *self.data_dir.glob("vms/*/qemu.pid")]:
            pid = _read_pid(pidfile)
            if pid and _alive(pid):
                found.append(f"{pidfile}: pid {pid} still runs")
        found += [f"mount: {m.strip()}" for m in mounts_below(self.data_dir)]
        try:
            httpx.get(f"{self.url}/healthz", timeout=2)
            found.append(f"something still answers on {self.url}")
        except httpx.TransportError:
            pass
        return found

    def kill_leftovers(self) -> None:
        for pidfile in [self.data_dir / "master.pid", *self.data_dir.glob("vms/*/qemu.pid")]:
            pid = _read_pid(pidfile)
            if pid and _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie child of ours has exited
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    require_build_tools()
    require_qemu()
    TEST_CACHE.mkdir(parents=True, exist_ok=True)
    p = Place(tmp_path_factory.mktemp("front-door") / "data", free_port())
    try:
        yield p
    finally:
        p.make("demo-stop")
        p.kill_leftovers()


def _check_demo_output(out: str) -> None:
    assert "Traceback" not in out, out
    assert "facts of " in out and "boot timeline:" in out, out
    assert "DEMO-0001" in out, out  # the node's serial, as it reported it
    timeline = out.split("boot timeline:", 1)[1]
    for kind in ("script", "kernel", "initrd", "squashfs-start", "squashfs-end", "report"):
        assert re.search(rf"\b{kind}\b", timeline), f"no {kind} in the timeline:\n{out}"


def test_make_demo_on_a_fresh_data_dir(place: Place) -> None:
    done = place.make("demo", timeout_s=DEMO_TIMEOUT_S)
    assert done.returncode == 0, done.stdout
    _check_demo_output(done.stdout)
    assert re.search(r"\bbuilt livestrap-", done.stdout), done.stdout


def test_make_demo_again_reuses_the_image(place: Place) -> None:
    done = place.make("demo", timeout_s=DEMO_TIMEOUT_S)
    assert done.returncode == 0, done.stdout
    assert "up to date, reused" in done.stdout, done.stdout
    assert "a master is already running" in done.stdout, done.stdout
    _check_demo_output(done.stdout)


def test_make_demo_stop_leaves_nothing_running(place: Place) -> None:
    done = place.make("demo-stop")
    assert done.returncode == 0, done.stdout
    deadline = time.monotonic() + 20
    while place.leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert place.leftovers() == []


def walk_script(place: Place) -> str:
    """The README's runnable blocks as one shell script, in order, each announced with its
    line; the only changes are the data dir and the port."""
    parts = ["set -euo pipefail", "trap 'kill $(jobs -p) 2>/dev/null || true' EXIT"]
    for block in blocks(README.read_text()):
        if not block.run:
            continue
        text = block.text.replace(DEFAULT_DATA_DIR, str(place.data_dir))
        text = text.replace(f"127.0.0.1:{DEFAULT_PORT}", f"127.0.0.1:{place.port}")
        parts += [f"echo '=== README.md:{block.line}'", text]
    return "\n".join(parts) + "\n"


def test_readme_walk(place: Place, tmp_path: Path) -> None:
    """Every README example, in order, in one shell in a scratch folder: the way a reader
    who copies them would run them, after `make demo` as the README's first step."""
    if not (place.data_dir / "active").exists():  # run alone (-k walk): the demo first
        assert place.make("demo", timeout_s=DEMO_TIMEOUT_S).returncode == 0
        assert place.make("demo-stop").returncode == 0
    script = tmp_path / "walk.sh"
    script.write_text(walk_script(place))
    work = tmp_path / "work"
    work.mkdir()
    env = dict(place.env(), LIVESTRAP_MASTER=place.url)
    proc = subprocess.Popen(
        ["flock", "--close", str(BUILD_LOCK), "bash", "-x", str(script)], cwd=work, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=DEMO_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
    finally:
        with contextlib.suppress(ProcessLookupError):  # a `serve &` the script left behind
            os.killpg(proc.pid, signal.SIGTERM)
    at = re.findall(r"=== (README\.md:\d+)", out)
    assert proc.returncode == 0, f"failed in the block at {at[-1] if at else '?'}:\n{out[-6000:]}"
    assert "Traceback" not in out, out
    deadline = time.monotonic() + 20
    while place.leftovers() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert place.leftovers() == []
