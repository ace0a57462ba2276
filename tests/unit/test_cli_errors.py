"""Mistakes an operator makes get one line on stderr and exit 1 (2: usage), never a traceback.

These run `main()` itself, as the `livestrap` script does, so what is checked is what gets
printed (rich must not read paths or YAML messages as markup).
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from livestrap.builder.events import BuildEvent
from livestrap.cli import main
from livestrap.cli.progress import RichProgress

pytestmark = pytest.mark.unit

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"


def run_main(
    argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of `livestrap ARGV`."""
    monkeypatch.setattr(sys, "argv", ["livestrap", *argv])
    monkeypatch.setenv("LIVESTRAP_MIRROR", "http://mirror.example.test/debian")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return code if isinstance(code, int) else 1, out, err


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


def test_missing_spec_path_with_brackets_is_printed_as_is(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "x[dim]" / "spec.yaml"
    code, _, err = run_main(["spec", "check", str(path)], capsys, monkeypatch)
    assert code == 1
    assert one_error_line(err) == f"error: cannot read spec {path}: No such file or directory"


def test_long_messages_are_not_wrapped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / ("a-rather-long-directory-name-[bold]-" * 4) / "spec.yaml"
    code, _, err = run_main(["spec", "check", str(path)], capsys, monkeypatch)
    assert code == 1
    assert str(path) in one_error_line(err)


def test_build_progress_prints_paths_as_is() -> None:
    out = io.StringIO()
    view = RichProgress(Console(file=out, width=200))
    view(BuildEvent(kind="build-start", message="/srv/[dim]/logs/build.log"))
    assert "build log: /srv/[dim]/logs/build.log" in out.getvalue()


def write_spec(tmp_path: Path, body: str, name: str = "spec.yaml") -> Path:
    (tmp_path / "archive.asc").write_bytes((KEYS / "archive-test.asc").read_bytes())
    path = tmp_path / name
    path.write_text("suite: bookworm\nmirror_key: archive.asc\n" + body)
    return path


def test_yaml_syntax_error_names_line_and_column_whole(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(tmp_path, "packages: [curl, jq\nlabel: x\n", name="[dim]spec.yaml")
    code, _, err = run_main(["spec", "check", str(path)], capsys, monkeypatch)
    assert code == 1
    assert one_error_line(err) == (
        f"error: {path} is not valid YAML at line 4, column 6: expected ',' or ']', but got ':'"
        " (while parsing a flow sequence at line 3, column 11)"
    )


def test_unquoted_no_is_explained(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(tmp_path, "label: no\n")
    code, _, err = run_main(["spec", "check", str(path)], capsys, monkeypatch)
    assert code == 1
    assert "Traceback" not in err
    assert err.splitlines() == [
        f"error: {path} is invalid:",
        "  label: got the boolean false (YAML reads unquoted no/yes/on/off as booleans); "
        'quote it: label: "no" (line 3)',
    ]


@pytest.mark.parametrize(
    "argv",
    [["settings", "set", "{path}"], ["builds", "start", "--overrides", "{path}"]],
    ids=["settings set", "builds start"],
)
def test_client_commands_report_yaml_errors_before_calling_the_master(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "in[b].yaml"
    path.write_text("label: x\n  packages: [a]\n")
    argv = [a.format(path=path) for a in argv]
    argv += ["--master", "http://127.0.0.1:9", "--token", "t"]
    code, _, err = run_main(argv, capsys, monkeypatch)
    assert code == 1
    assert one_error_line(err) == (
        f"error: {path} is not valid YAML at line 2, column 11: mapping values are not allowed here"
    )


@pytest.mark.parametrize(
    "argv", [["images", "list"], ["images", "show", "x"], ["images", "diff", "a", "b"]]
)
def test_store_commands_refuse_a_missing_data_dir(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    missing = tmp_path / "no" / "such[dim]"
    code, out, err = run_main([*argv, "--data-dir", str(missing)], capsys, monkeypatch)
    assert code == 1
    assert one_error_line(err).startswith(f"error: data dir {missing} does not exist; pass")
    assert out == ""
    assert not missing.exists()


def test_store_commands_refuse_a_file_as_data_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "f").write_text("")
    monkeypatch.setenv("LIVESTRAP_DATA_DIR", str(tmp_path / "f"))
    code, _, err = run_main(["images", "list"], capsys, monkeypatch)
    assert code == 1
    assert "is not a directory" in one_error_line(err)


def test_an_empty_data_dir_is_an_empty_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = run_main(["images", "list", "--data-dir", str(tmp_path)], capsys, monkeypatch)
    assert (code, out) == (0, "")  # nothing to pipe on
    assert "no images" in err


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["build", "--data-dir", "/proc/livestrap"], "cannot create data dir /proc/livestrap"),
        (["repo", "publish", "--data-dir", "/proc/livestrap"], "cannot create data dir"),
        (["build", "--cache-dir", "/proc/cache"], "cannot create cache dir /proc/cache"),
    ],
)
def test_commands_that_write_refuse_an_unusable_dir(
    argv: list[str],
    what: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIVESTRAP_DATA_DIR", str(tmp_path / "data"))
    code, _, err = run_main(argv, capsys, monkeypatch)
    assert code == 1
    assert what in one_error_line(err)


def test_an_os_error_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the machine refuses (here: a folder under /proc) is said in its own words."""
    code, _, err = run_main(["agent", "build-deb", "--out-dir", "/proc/x"], capsys, monkeypatch)
    assert code == 1
    assert "/proc/x" in one_error_line(err)
