"""`livestrap serve`: --tls-cert/--tls-key reach uvicorn and are checked first; a master
reachable from the network without TLS warns; first start prints token paths, never the
tokens (stderr ends up in logs)."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import livestrap
from livestrap.cli import serve_cmd
from livestrap.errors import OptionError, StartupError
from livestrap.master import preflight as pf
from livestrap.master.config import MasterSettings
from masterproc import free_port

pytestmark = [pytest.mark.unit, pytest.mark.security]

SRC = Path(livestrap.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """serve() installs the master's log handler (on capsys's stream): undo it after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def run_serve(
    monkeypatch: pytest.MonkeyPatch, data: Path, listen: str, **tls: Path
) -> dict[str, Any]:
    """serve() up to uvicorn.run, whose arguments are returned instead of serving."""
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve_cmd.uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(pf, "check_listen", lambda host, port: None)  # binds nothing
    monkeypatch.setattr(pf, "check_tls", lambda cert, key: None)  # no real files here
    serve_cmd.serve(
        data_dir=data, listen=listen, database_url=None, public_url=None, cache_dir=None,
        access_log=False, tls_cert=tls.get("cert"), tls_key=tls.get("key"),
    )  # fmt: skip
    return seen


def test_first_start_prints_paths_not_tokens(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    run_serve(monkeypatch, data, f"127.0.0.1:{free_port()}")
    err = capsys.readouterr().err
    for name in ("admin", "discovery"):
        token = (data / f"{name}.token").read_text().strip()
        assert token not in err
        assert (
            f"INFO livestrap.master.app: {name} token made: {data / f'{name}.token'} (mode 0600"
            in err
        )
    assert "WARNING" not in err  # loopback: nothing crosses a network
    run_serve(monkeypatch, data, f"127.0.0.1:{free_port()}")
    assert "token made" not in capsys.readouterr().err  # second start: nothing made


def test_tls_files_reach_uvicorn(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    seen = run_serve(monkeypatch, tmp_path / "d", "0.0.0.0:8443", cert=cert, key=key)
    assert (seen["ssl_certfile"], seen["ssl_keyfile"]) == (cert, key)
    err = capsys.readouterr().err
    assert "WARNING" not in err


def test_plain_http_off_loopback_warns(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    seen = run_serve(monkeypatch, tmp_path / "d", "0.0.0.0:8080")
    assert seen["ssl_certfile"] is None and seen["ssl_keyfile"] is None
    err = capsys.readouterr().err
    assert "WARNING livestrap.master: listening on 0.0.0.0:8080 without TLS: the admin token" in err


@pytest.mark.parametrize(
    ("host", "warns"),
    [("127.0.0.1", False), ("127.1.2.3", False), ("::1", False), ("localhost", False),
     ("0.0.0.0", True), ("::", True), ("10.0.0.1", True), ("192.0.2.7", True)],
)  # fmt: skip
def test_plain_http_warning(host: str, warns: bool) -> None:
    cfg = MasterSettings(data_dir=Path("/nonexistent"), host=host)
    assert (pf.plain_http_warning(cfg) is not None) == warns
    with_tls = MasterSettings(data_dir=Path("/x"), host=host, tls_cert=Path("c"), tls_key=Path("k"))
    assert pf.plain_http_warning(with_tls) is None


def test_tls_needs_both_files(tmp_path: Path) -> None:
    pf.check_tls(None, None)
    with pytest.raises(OptionError, match="--tls-cert and --tls-key go together"):
        pf.check_tls(tmp_path / "c.pem", None)
    with pytest.raises(OptionError, match="go together"):
        pf.check_tls(None, tmp_path / "k.pem")


def test_tls_files_must_be_readable_pem(tmp_path: Path) -> None:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    with pytest.raises(StartupError, match=f"--tls-cert {cert}: cannot read it"):
        pf.check_tls(cert, key)
    cert.write_text("not a certificate\n")
    with pytest.raises(StartupError, match=f"--tls-key {key}: cannot read it"):
        pf.check_tls(cert, key)
    key.write_text("not a key\n")
    with pytest.raises(StartupError, match="not a PEM certificate and its key"):
        pf.check_tls(cert, key)


def test_serve_refuses_half_tls_in_one_line(tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "livestrap", "serve", "--data-dir", str(tmp_path / "d"),
            "--listen", f"127.0.0.1:{free_port()}",
            "--tls-cert", str(tmp_path / "c.pem")]  # fmt: skip
    env = {"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=20, env=env)
    assert done.returncode == 2
    expected = "error: --tls-cert and --tls-key go together: pass both, or neither"
    assert done.stderr.strip() == expected
