"""A real `livestrap serve --tls-cert --tls-key` on 127.0.0.1 answers HTTPS with that
certificate; its first start leaves the tokens in 0600 files, prints only their paths, and
keeps the data dir 0750 and the database 0640."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import livestrap
from helpers import require_commands
from masterproc import PG_ADMIN_URL, free_port, stop_process

pytestmark = [pytest.mark.integration, pytest.mark.security]

SRC = Path(livestrap.__file__).resolve().parents[1]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (and its key), made with openssl."""
    require_commands("openssl")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_https_master(tmp_path: Path) -> None:
    if PG_ADMIN_URL:
        pytest.skip("serve's TLS runs once, in the SQLite pass")
    cert, key = self_signed(tmp_path)
    data, port = tmp_path / "data", free_port()
    argv = [sys.executable, "-m", "livestrap", "serve", "--data-dir", str(data), "--listen",
            f"127.0.0.1:{port}", "--tls-cert", str(cert), "--tls-key", str(key)]  # fmt: skip
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})  # fmt: skip
    trusted = ssl.create_default_context(cafile=str(cert))
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                r = httpx.get(f"{url}/healthz", verify=trusted, timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert r.status_code == 200 and r.json()["status"] == "ok"
        admin = (data / "admin.token").read_text().strip()
        headers = {"Authorization": f"Bearer {admin}"}
        assert httpx.get(f"{url}/api/v1/nodes", headers=headers, verify=trusted).status_code == 200
        with pytest.raises(httpx.TransportError):  # plain HTTP gets no answer from it
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        with pytest.raises(httpx.ConnectError):  # nor does a client that trusts nothing
            httpx.get(f"{url}/healthz", timeout=5, verify=ssl.create_default_context())
        text = log.read_text()
        assert f"starting: listen https://127.0.0.1:{port}, data dir {data}, role " in text
        assert "WARNING" not in text
        for name in ("admin", "discovery"):
            path = data / f"{name}.token"
            assert path.read_text().strip() not in text
            assert f"{name} token made: {path}" in text
            assert mode(path) == 0o600
        assert mode(data) == 0o750
        assert mode(data / "livestrap.db") == 0o640
    finally:
        stop_process(proc)


def test_key_of_another_certificate_is_refused(tmp_path: Path) -> None:
    from livestrap.errors import StartupError
    from livestrap.master.preflight import check_tls

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    cert, key = self_signed(tmp_path / "a")
    check_tls(cert, key)
    with pytest.raises(StartupError, match="not a PEM certificate and its key"):
        check_tls(cert, self_signed(tmp_path / "b")[1])
