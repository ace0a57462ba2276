"""`livestrap spec check|show` through the typer app (no build, no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from livestrap.cli import app
from livestrap.errors import SpecError
from livestrap.spec import BASE_PACKAGES

pytestmark = pytest.mark.unit

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
ENV = {"LIVESTRAP_MIRROR": "http://mirror.example.test/debian"}


def write_spec(tmp_path: Path, body: str) -> Path:
    (tmp_path / "archive.asc").write_bytes((KEYS / "archive-test.asc").read_bytes())
    path = tmp_path / "spec.yaml"
    path.write_text("suite: bookworm\nmirror_key: archive.asc\n" + body)
    return path


def test_spec_check_ok(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "packages: [curl, jq]\n")
    result = CliRunner().invoke(app, ["spec", "check", str(path)], env=ENV)
    assert result.exit_code == 0, result.output
    n = len(BASE_PACKAGES) + 3  # the base set, the kernel and two extras
    assert f"{path}: ok (debian bookworm, {n} packages)" in result.output


def test_spec_check_bad_field(tmp_path: Path) -> None:
    path = write_spec(
        tmp_path,
        "repos:\n"
        "  - name: acme\n"
        "    uri: http://acme.example.test/apt\n"
        "    suite: stable\n"
        "    trusted: true\n"
        "    priority: 0\n",
    )
    result = CliRunner().invoke(app, ["spec", "check", str(path)], env=ENV)
    assert result.exit_code != 0
    assert isinstance(result.exception, SpecError)
    message = str(result.exception)
    assert message.startswith(f"{path} is invalid:")
    assert "repos[0].priority" in message


def test_spec_check_unknown_key(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "pakages: [curl]\n")
    result = CliRunner().invoke(app, ["spec", "check", str(path)], env=ENV)
    assert result.exit_code != 0
    assert isinstance(result.exception, SpecError)
    assert "pakages: unknown key" in str(result.exception)


def test_spec_check_pin_conflict(tmp_path: Path) -> None:
    repo = "  - {{name: {}, uri: http://tools.example.test/{}, suite: stable, trusted: true}}\n"
    # two repos on one host with one suite: their release files settle it at build time
    path = write_spec(tmp_path, "repos:\n" + repo.format("a", "a") + repo.format("b", "b"))
    result = CliRunner().invoke(app, ["spec", "check", str(path)], env=ENV)
    assert result.exit_code == 0, result.output
    # the very same repository twice: nothing ever could
    path = write_spec(tmp_path, "repos:\n" + repo.format("a", "x") + repo.format("b", "x"))
    result = CliRunner().invoke(app, ["spec", "check", str(path)], env=ENV)
    assert isinstance(result.exception, SpecError)
    assert "repos a, b share the pin: both are http://tools.example.test/x" in str(result.exception)


def test_spec_check_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["spec", "check", str(tmp_path / "nope.yaml")], env=ENV)
    assert result.exit_code != 0
    assert isinstance(result.exception, SpecError)
    assert "cannot read spec" in str(result.exception)


def test_spec_show_prints_the_effective_spec(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "label: demo\n")
    result = CliRunner().invoke(app, ["spec", "show", str(path)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "label: demo\n" in result.output
    assert "mirror: http://mirror.example.test/debian\n" in result.output
    assert "kernel: linux-image-amd64\n" in result.output
