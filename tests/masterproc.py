"""Run a real master process on 127.0.0.1 for a test, and talk to it with httpx."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Master:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def discovery_token(self) -> str:
        return (self.data_dir / "discovery.token").read_text().strip()

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30
        )

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def discovery(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.discovery_token}"},
            timeout=30,
        )


@contextmanager
def master_process(
    data_dir: Path,
    *,
    fake_builds: bool = True,
    database_url: str | None = None,
    public_url: str | None = None,
    heartbeat_s: int = 30,
    port: int | None = None,
) -> Iterator[Master]:
    """A master on 127.0.0.1 serving `data_dir`; stopped (SIGTERM, then kill) afterwards."""
    port = port or free_port()
    argv = [sys.executable, str(HERE / "run_master.py"), "--data-dir", str(data_dir),
            "--port", str(port), "--heartbeat-s", str(heartbeat_s)]  # fmt: skip
    if fake_builds:
        argv.append("--fake-builds")
    if database_url:
        argv += ["--database-url", database_url]
    if public_url:
        argv += ["--public-url", public_url]
    proc = subprocess.Popen(argv)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"master exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("master did not start within 30 s")
            time.sleep(0.1)
        yield Master(url, data_dir, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
