"""`livestrap settings set`: it asks the master only about the folder it uploads into."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from livestrap.cli import app as cli_app
from livestrap.cli.remote import Remote

pytestmark = [pytest.mark.unit, pytest.mark.security]


def test_settings_set_lists_only_its_own_upload_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: every run listed the master's whole spec/ tree (os.walk of every old set)."""
    (tmp_path / "overlay/etc").mkdir(parents=True)
    (tmp_path / "overlay/etc/motd").write_text("hi\n")
    (tmp_path / "site.sh").write_text("#!/bin/sh\n")
    spec = {"extra_dirs": ["overlay"], "scripts": ["site.sh"]}
    (tmp_path / "rack.yaml").write_text(yaml.safe_dump(spec))
    calls: list[tuple[str, str, Any]] = []

    def call(self: Remote, method: str, path: str, **kwargs: Any) -> Any:
        calls.append((method, path, kwargs.get("params")))
        if method == "GET":  # the master has the script from an earlier run
            folder = kwargs["params"]["prefix"]
            return [{"path": folder, "type": "dir"}, {"path": f"{folder}/site.sh"}]
        return {}

    monkeypatch.setattr(Remote, "call", call)
    result = CliRunner().invoke(cli_app, ["settings", "set", str(tmp_path / "rack.yaml")])
    assert result.exit_code == 0, result.output
    gets = [c for c in calls if c[0] == "GET"]
    assert len(gets) == 1 and gets[0][1] == "/api/v1/settings/files"
    folder = gets[0][2]["prefix"]
    assert folder.startswith("sets/") and folder.count("/") == 1
    puts = [c[1] for c in calls if c[0] == "PUT"]
    assert puts == [f"/api/v1/settings/files/{folder}/overlay", "/api/v1/settings"]
    assert f"{folder}/site.sh: on the master already" in result.output
