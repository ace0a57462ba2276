"""The test masters get their database URL through the environment (issue-11 review):
`make test` passed `--database-url postgresql://role:PASSWORD@...` on the command line,
which every local user sees in `ps`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import masterproc
import run_master

pytestmark = [pytest.mark.unit, pytest.mark.security]

URL = "postgresql://livestrap_test_1_ab:S3CRETpassw0rd@127.0.0.1:5432/livestrap_test_1_ab"


class Started(Exception):
    pass


def _spawned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **kw: Any) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def popen(argv: list[str], env: dict[str, str] | None = None, **_: Any) -> None:
        seen.update(argv=argv, env=env)
        raise Started

    monkeypatch.setattr(masterproc.subprocess, "Popen", popen)
    with pytest.raises(Started), masterproc.master_process(tmp_path / "data", **kw):
        pass
    return seen


def test_the_password_never_reaches_the_command_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen = _spawned(monkeypatch, tmp_path, database_url=URL)
    assert not [a for a in seen["argv"] if "S3CRET" in a]
    assert seen["env"]["LIVESTRAP_DATABASE_URL"] == URL


def test_a_url_in_the_callers_environment_is_not_inherited(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Someone running the tests on a master must not have them write to its database."""
    monkeypatch.setenv("LIVESTRAP_DATABASE_URL", "postgresql://prod@db.invalid/livestrap")
    monkeypatch.setattr(masterproc, "PG_ADMIN_URL", None)
    seen = _spawned(monkeypatch, tmp_path, database_url=None)
    assert "LIVESTRAP_DATABASE_URL" not in seen["env"]


def test_run_master_takes_the_url_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIVESTRAP_DATABASE_URL", URL)
    settings, fake = run_master.parse(["--data-dir", str(tmp_path), "--port", "1", "--fake-builds"])
    assert (settings.database_url, settings.port, fake) == (URL, 1, True)
    monkeypatch.delenv("LIVESTRAP_DATABASE_URL")
    assert run_master.parse(["--data-dir", str(tmp_path), "--port", "1"])[0].database_url is None
