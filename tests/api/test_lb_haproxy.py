"""Two masters on one database behind a real HAProxy with `netboot lb-config`'s config:
both take reports, the node's own address reaches them, and when one is SIGKILLed every
next request is answered by the other (HAProxy's retry before the request is sent, then
its /healthz check). Everything on 127.0.0.1."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from helpers import skip_missing
from livestrap.netboot.haproxy import BalancerOptions, check_options, render_haproxy_config
from masterproc import Master, free_port, master_process, stop_process

sys.path.insert(0, str(Path(__file__).parent))
from test_discovery import body, machine
from test_ops import scrape

pytestmark = pytest.mark.integration

NODE_ADDRESS = "127.0.0.7"  # the "node": HAProxy passes it on in X-Forwarded-For


def haproxy() -> str:
    found = shutil.which("haproxy", path="/usr/sbin:/usr/bin")
    if not found:
        skip_missing("haproxy (apt-get install haproxy)")
    assert found
    return found


@pytest.fixture
def masters(tmp_path: Path) -> Iterator[tuple[Master, Master]]:
    """Two masters on one data dir and so one database (SQLite file, or the data dir's
    PostgreSQL schema in the PostgreSQL pass)."""
    data = tmp_path / "data"
    data.mkdir()
    with master_process(data) as first, master_process(data) as second:
        yield first, second


def report(lb: str, token: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=NODE_ADDRESS)
    with httpx.Client(base_url=lb, transport=transport, timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:  # fmt: skip
        return client.post("/api/v1/discovery", json=body(machine()))


def test_two_masters_behind_haproxy(masters: tuple[Master, Master], tmp_path: Path) -> None:
    binary = haproxy()
    first, second = masters
    port = free_port()
    opts = BalancerOptions(masters=(first.url, second.url), listen=f"127.0.0.1:{port}",
                           check_interval_s=1, maxconn=1000)  # fmt: skip
    assert check_options(opts) == []
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(render_haproxy_config(opts))
    checked = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True,
                             timeout=30, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log = tmp_path / "haproxy.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    lb = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{lb}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        token = first.discovery_token
        answers = [report(lb, token).status_code for _ in range(20)]
        assert answers == [201] * 20
        taken = [scrape(m)[("livestrap_discovery_reports_total", (("kind", "report"),))]
                 for m in masters]  # fmt: skip
        assert sum(taken) == 20 and min(taken) >= 5, taken  # leastconn spreads them
        with first.admin() as admin:
            nodes = admin.get("/api/v1/nodes").json()
        assert len(nodes) == 20 and {n["last_ip"] for n in nodes} == {NODE_ADDRESS}

        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(timeout=10)
        t0 = time.monotonic()
        after = [report(lb, token).status_code for _ in range(20)]
        took = time.monotonic() - t0
        assert after == [201] * 20, after  # none lost while HAProxy notices
        with second.admin() as admin:
            assert len(admin.get("/api/v1/nodes").json()) == 40
        assert took < 20, took
        time.sleep(2.5)  # two failed checks at 1 s: the dead master is marked down
        assert "m1 is DOWN" in log.read_text(), log.read_text()
    finally:
        stop_process(proc)
