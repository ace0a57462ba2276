"""The master's settings: flags > env > file > defaults, the file's errors, where each value
came from (`livestrap config show`), the database password masked, and one line per bad
value naming its key and source."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from livestrap.cli import app as cli_app
from livestrap.cli import serve_cmd
from livestrap.errors import OptionError
from livestrap.master import config_load
from livestrap.master.config import MasterSettings
from livestrap.master.config_load import config_file, effective, load_settings, mask, origins

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No LIVESTRAP_* setting from the caller's shell, and no /etc file of this machine."""
    for name in list(os.environ):
        if name.startswith("LIVESTRAP_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(config_load, "DEFAULT_CONFIG", tmp_path / "absent.toml")


def toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "livestrap.toml"
    path.write_text(text)
    return path


def test_defaults_without_file_or_env() -> None:
    cfg = load_settings()
    assert (cfg.data_dir, cfg.host, cfg.port, cfg.role) == (
        Path("/var/lib/livestrap"), "127.0.0.1", 8080, "all")  # fmt: skip
    assert (cfg.log_level, cfg.access_log, cfg.trusted_proxies) == ("info", False, ("127.0.0.1",))
    assert cfg.db_url == "sqlite:////var/lib/livestrap/livestrap.db"


@pytest.mark.parametrize(
    ("flag", "env", "file", "expected"),
    [
        (9001, "9002", 9003, 9001),  # flag > env
        (9001, None, 9003, 9001),  # flag > file
        (None, "9002", 9003, 9002),  # env > file
        (None, None, 9003, 9003),  # file > default
        (None, "9002", None, 9002),  # env > default
        (None, None, None, 8080),
    ],
)
def test_precedence(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    flag: int | None,
    env: str | None,
    file: int | None,
    expected: int,
) -> None:
    if env is not None:
        monkeypatch.setenv("LIVESTRAP_PORT", env)
    path = toml(tmp_path, f"port = {file}\n" if file is not None else "")
    assert load_settings({"port": flag}, path).port == expected


def test_config_from_env_var_and_default_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = toml(tmp_path, 'role = "api"\n')
    monkeypatch.setenv("LIVESTRAP_CONFIG", str(path))
    assert config_file() == path and load_settings().role == "api"
    monkeypatch.delenv("LIVESTRAP_CONFIG")
    assert config_file() is None
    monkeypatch.setattr(config_load, "DEFAULT_CONFIG", path)
    assert config_file() == path


def test_keyword_construction_reads_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(config_load, "DEFAULT_CONFIG", toml(tmp_path, "port = 1\n"))
    assert MasterSettings(data_dir=tmp_path).port == 8080  # tests and code: no /etc file


@pytest.mark.parametrize("where", ["flag", "env"])
def test_a_missing_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    missing = tmp_path / "nope.toml"
    if where == "env":
        monkeypatch.setenv("LIVESTRAP_CONFIG", str(missing))
    with pytest.raises(OptionError) as err:
        load_settings({}, missing if where == "flag" else None)
    name = "--config" if where == "flag" else "LIVESTRAP_CONFIG"
    assert str(err.value) == f"{name} {missing}: the config file does not exist"


def test_a_broken_file_is_one_line(tmp_path: Path) -> None:
    path = toml(tmp_path, "port = = 1\n")
    with pytest.raises(OptionError, match=f"^config file {path}: not valid TOML: .*line 1"):
        load_settings({}, path)
    assert OptionError.exit_code == 2


def test_bad_values_one_line_each_with_key_and_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LIVESTRAP_BOOT_RATE", "nan")
    monkeypatch.setenv("LIVESTRAP_TRUSTED_PROXIES", "10.0.0.0/8 nginx")
    path = toml(tmp_path, 'port = 0\ncolour = "red"\nlog_level = "loud"\n')
    with pytest.raises(OptionError) as err:
        load_settings({"heartbeat_s": 0}, path)
    lines = str(err.value).splitlines()
    assert lines[0] == "invalid settings:"
    assert sorted(line.strip() for line in lines[1:]) == [
        "boot_rate: Input should be a finite number (got 'nan'), from env LIVESTRAP_BOOT_RATE",
        f"colour: not a setting (docs/config.md lists them) (got 'red'), from file {path}",
        "heartbeat_s: Input should be greater than or equal to 1 (got 0), from flag",
        "log_level: expected one of critical, error, warning, info, debug, trace (got 'loud'), "
        f"from file {path}",
        f"port: Input should be greater than or equal to 1 (got 0), from file {path}",
        "trusted_proxies: 'nginx' is not an IP address, a network or * (got '10.0.0.0/8 nginx'),"
        " from env LIVESTRAP_TRUSTED_PROXIES",
    ]


def test_a_bad_database_url_is_shown_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESTRAP_DATABASE_URL", "postgresql://u:hunter2@h/db")
    monkeypatch.setenv("LIVESTRAP_PORT", "x")
    with pytest.raises(OptionError) as err:
        load_settings()
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://u:hunter2@db.example/livestrap", "postgresql://u:***@db.example/livestrap"),
        ("postgresql+psycopg://u:p%40ss:x@h:5432/d", "postgresql+psycopg://u:***@h:5432/d"),
        ("postgresql://u@h/d", "postgresql://u@h/d"),
        ("sqlite:////var/lib/livestrap/livestrap.db", "sqlite:////var/lib/livestrap/livestrap.db"),
    ],
)
def test_mask(url: str, shown: str) -> None:
    assert mask("database_url", url) == shown
    assert mask("public_url", "http://a:b@c/") == "http://a:b@c/"  # not a secret key


def test_env_lists_and_sizes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIVESTRAP_FILE_MIRROR_ROOTS", "/srv/a  /srv/b")
    monkeypatch.setenv("LIVESTRAP_TRUSTED_PROXIES", "127.0.0.1,10.0.0.0/8")
    monkeypatch.setenv("LIVESTRAP_MAX_IMPORT_BYTES", "2G")
    monkeypatch.setenv("LIVESTRAP_ACCESS_LOG", "true")
    path = toml(tmp_path, 'max_body_bytes = "64K"\nlog_level = "DEBUG"\n')
    cfg = load_settings({}, path)
    assert cfg.file_mirror_roots == (Path("/srv/a"), Path("/srv/b"))
    assert cfg.trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert (cfg.max_import_bytes, cfg.max_body_bytes) == (2 << 30, 64 << 10)
    assert (cfg.access_log, cfg.log_level) == (True, "debug")


def test_origins_and_effective(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LIVESTRAP_PORT", "9100")
    path = toml(tmp_path, 'data_dir = "/srv/ls"\ndatabase_url = "postgresql://u:pw@h/d"\n')
    flags = {"host": "0.0.0.0"}
    rows = {r["key"]: r for r in effective(load_settings(flags, path), origins(flags, path))}
    assert set(rows) == set(MasterSettings.model_fields)
    assert rows["host"] == {"key": "host", "value": "0.0.0.0", "source": "flag"}
    assert rows["port"] == {"key": "port", "value": 9100, "source": "env LIVESTRAP_PORT"}
    assert rows["data_dir"] == {"key": "data_dir", "value": "/srv/ls", "source": f"file {path}"}
    assert rows["database_url"]["value"] == "postgresql://u:***@h/d"
    assert rows["cache_dir"] == {"key": "cache_dir", "value": "/srv/ls/cache", "source": "default"}
    assert rows["trusted_proxies"]["value"] == ["127.0.0.1"]


def test_config_show_cli(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = toml(tmp_path, 'database_url = "postgresql://u:hunter2@h/d"\nport = 9000\n')
    monkeypatch.setenv("LIVESTRAP_ROLE", "api")
    runner = CliRunner()
    table = runner.invoke(cli_app, ["config", "show", "--config", str(path)])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["KEY", "VALUE", "SOURCE"]
    assert ["port", "9000", "file", str(path)] in [line.split() for line in lines]
    assert ["role", "api", "env", "LIVESTRAP_ROLE"] in [line.split() for line in lines]
    assert "hunter2" not in table.output
    shown = runner.invoke(cli_app, ["config", "show", "--config", str(path), "-o", "json"])
    data = json.loads(shown.output)
    assert {"key": "port", "value": 9000, "source": f"file {path}"} in data
    assert len(data) == len(MasterSettings.model_fields)
    bad = runner.invoke(cli_app, ["config", "show", "--config", str(tmp_path / "x.toml")])
    assert bad.exit_code != 0


def test_serve_passes_settings_to_uvicorn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(serve_cmd.uvicorn, "run", lambda app, **kw: seen.update(kw))
    monkeypatch.setattr(serve_cmd, "create_app", lambda settings: seen.update(cfg=settings))
    monkeypatch.setattr(serve_cmd, "preflight", lambda settings: None)
    monkeypatch.setenv("LIVESTRAP_ACCESS_LOG", "1")
    path = toml(tmp_path, f'data_dir = "{tmp_path}"\nlog_level = "warning"\nport = 9000\n')
    serve_cmd.serve(config=path, listen="127.0.0.1:9100", trusted_proxies=["10.1.0.0/16"],
                    role="api")  # fmt: skip
    assert (seen["port"], seen["log_level"], seen["access_log"]) == (9100, "warning", True)
    assert seen["forwarded_allow_ips"] == ["10.1.0.0/16"]
    assert seen["cfg"].role == "api" and seen["cfg"].data_dir == tmp_path


def test_serve_refuses_bad_settings_before_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(serve_cmd, "preflight", lambda cfg: pytest.fail("ran on bad settings"))
    with pytest.raises(OptionError, match=r"role: .*from flag"):
        serve_cmd.serve(data_dir=tmp_path, role="builder")


def test_tftp_dir_needs_public_url(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tftp_dir needs public_url"):
        MasterSettings(data_dir=tmp_path, tftp_dir=tmp_path / "tftp")
    ok = MasterSettings(data_dir=tmp_path, tftp_dir=tmp_path / "t", public_url="http://10.0.0.1")
    assert ok.tftp_dir == tmp_path / "t"
