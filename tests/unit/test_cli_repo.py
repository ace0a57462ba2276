"""`livestrap repo publish` prints what it published (-o, -q); the repository is faked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from livestrap.cli import app, repo_cmd
from livestrap.packaging.master_repo import Published

pytestmark = pytest.mark.unit


class FakeRepo:
    def __init__(self, data_dir: Path) -> None:
        self.root, self.key_file = data_dir / "repo", data_dir / "repo" / "key.asc"

    def publish(self, debs: list[Path] | None, *, log: Any) -> list[Published]:
        deb = Path("/tmp/x/livestrap-agent_0.1.0+src1a2b_all.deb")
        return [Published("livestrap-agent", "0.1.0+src1a2b", deb)]


@pytest.fixture(autouse=True)
def fake_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(repo_cmd, "MasterRepo", FakeRepo)


def publish(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["repo", "publish", "--data-dir", str(tmp_path), *args])


def test_publish_prints_a_table_and_the_repository_on_stderr(tmp_path: Path) -> None:
    result = publish(tmp_path)
    assert result.stdout.splitlines() == [
        "PACKAGE          VERSION",
        "livestrap-agent  0.1.0+src1a2b",
    ]
    assert result.stderr == f"repository: {tmp_path}/repo (key: {tmp_path}/repo/key.asc)\n"
    assert "livestrap-agent_0.1.0+src1a2b_all.deb" in publish(tmp_path, "-o", "wide").stdout


def test_publish_quiet_and_json(tmp_path: Path) -> None:
    assert publish(tmp_path, "-q").stdout == "livestrap-agent\n"
    assert json.loads(publish(tmp_path, "-o", "json").stdout) == [
        {"package": "livestrap-agent", "version": "0.1.0+src1a2b",
         "file": "livestrap-agent_0.1.0+src1a2b_all.deb"}
    ]  # fmt: skip
