"""`netboot dnsmasq-config|nginx-config`: the renamed options, and the old names that
scripts use, still accepted with a warning on stderr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from livestrap.cli import app

pytestmark = pytest.mark.unit


def run(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_netboot_old_option_names_still_work() -> None:
    new = run("netboot", "dnsmasq-config", "--boot-url", "http://192.0.2.1:8080",
              "--proxy-dhcp", "192.0.2.0")  # fmt: skip
    old = run("netboot", "dnsmasq-config", "--master", "http://192.0.2.1:8080",
              "--proxy-dhcp", "192.0.2.0")  # fmt: skip
    assert new.exit_code == old.exit_code == 0 and new.stdout == old.stdout
    assert new.stderr == ""
    assert old.stderr == "warning: dnsmasq-config --master is deprecated; use --boot-url\n"
    missing = run("netboot", "dnsmasq-config", "--proxy-dhcp", "192.0.2.0")
    assert missing.exit_code == 2 and "--boot-url" in missing.output


def test_nginx_config_old_option_names_still_work(tmp_path: Path) -> None:
    base = ["netboot", "nginx-config", "--data-dir", str(tmp_path)]
    new = run(*base, "--upstream", "http://10.0.0.1:8080", "--nginx-listen", "8088")
    old = run(*base, "--master", "http://10.0.0.1:8080", "--listen", "8088")
    assert new.exit_code == old.exit_code == 0 and new.stdout == old.stdout
    assert "listen 8088;" in new.stdout and "server 10.0.0.1:8080" in new.stdout
    assert old.stderr.splitlines() == [
        "warning: nginx-config --master is deprecated; use --upstream",
        "warning: nginx-config --listen is deprecated; use --nginx-listen",
    ]
    helped = run("netboot", "nginx-config", "--help").stdout
    assert "--upstream" in helped and "--master" not in helped and "--listen " not in helped
