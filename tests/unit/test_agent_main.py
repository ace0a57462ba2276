"""`python3 -m livestrap.agent`: --print, --once and config errors."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from livestrap.agent.__main__ import main

pytestmark = pytest.mark.unit

QEMU = Path(__file__).resolve().parent.parent / "fixtures" / "agent" / "qemu-guest"


def test_print_on_a_fixture_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cmdline = tmp_path / "cmdline"
    cmdline.write_text("livestrap.image=img-3 BOOTIF=01-52-54-00-12-34-56\n")
    args = ["--print", "--root", str(QEMU), "--cmdline", str(cmdline)]
    assert main([*args, "--config", str(tmp_path / "none.conf")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["facts"]["system"]["image_id"] == "img-3"
    assert report["facts"]["nics"][0]["pxe"] is True


def test_print_on_this_machine() -> None:
    """The real collectors on the real host (whatever tools it lacks) print valid JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", "livestrap.agent", "--print", "--config", "/nonexistent"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["facts"]["cpu"]["threads"] >= 1
    assert report["facts"]["memory"]["total"] > 0


def test_missing_url_exits_2(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    args = ["--once", "--cmdline", str(tmp_path / "none"), "--config", str(tmp_path / "none")]
    assert main(args) == 2
    assert "livestrap.url=" in caplog.text
    bad = tmp_path / "agent.conf"
    bad.write_text("heartbeat_s=often\n")
    assert main(["--once", "--cmdline", str(tmp_path / "none"), "--config", str(bad)]) == 2


class Accepting(http.server.BaseHTTPRequestHandler):
    status = 201

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        payload = b'{"node_id": "n-9", "heartbeat_s": 60, "facts_required": false}'
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


class Refusing(Accepting):
    status = 401


@pytest.mark.parametrize(("handler", "code"), [(Accepting, 0), (Refusing, 1)])
def test_once_exit_status(
    tmp_path: Path, handler: type[http.server.BaseHTTPRequestHandler], code: int
) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        conf = tmp_path / "agent.conf"
        conf.write_text(f"[agent]\nurl = http://127.0.0.1:{server.server_port}\ntoken = t\n")
        args = ["--once", "--root", str(QEMU), "--cmdline", str(tmp_path / "none")]
        assert main([*args, "--config", str(conf)]) == code
    finally:
        server.shutdown()
        server.server_close()
