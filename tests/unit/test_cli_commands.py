"""The client command groups: client options in one place (before or after the command
name, or from the environment), a lazy client, -o/-q, the deprecated --json. A fake
master answers (no server process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fake_master import FakeMaster, node_summary
from fake_master import fake_master as fake_master
from typer.testing import CliRunner

from livestrap.cli import app
from livestrap.cli.remote import hoist_client_options

pytestmark = pytest.mark.unit

NODE = node_summary("4c4c4544-0042-3510-8052-b2c04f4d4e31", "52:54:00:12:34:56")
DETAIL = {**NODE, "macs": [NODE["boot_mac"]], "heartbeat_s": 30, "facts_hash": None,
          "facts": {"system": {"firmware": "uefi"}}, "failures": []}  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env=env)


@pytest.fixture
def inventory(fake_master: FakeMaster) -> FakeMaster:
    fake_master.routes["GET /api/v1/nodes"] = lambda request: [NODE]
    fake_master.routes[f"GET /api/v1/nodes/{NODE['id']}"] = lambda request: DETAIL
    fake_master.routes["GET /api/v1/nodes/4c4c"] = lambda request: DETAIL
    return fake_master


def test_hoist_client_options() -> None:
    assert hoist_client_options(["list", "--mac", "M", "--master", "U", "--token=T"]) == [
        "--master", "U", "--token=T", "list", "--mac", "M",
    ]  # fmt: skip
    assert hoist_client_options(["show", "x", "--", "--master", "U"]) == [
        "show", "x", "--", "--master", "U",
    ]  # fmt: skip
    assert hoist_client_options(["list", "--master"]) == ["list", "--master"]  # click complains


@pytest.mark.parametrize(
    "argv",
    [
        ["nodes", "--master", "http://m:1", "--token", "T", "--data-dir", "/d", "list"],
        ["nodes", "list", "--master", "http://m:1", "--token", "T", "--data-dir", "/d"],
        ["nodes", "--master", "http://m:1", "list", "--token", "T", "--data-dir=/d"],
    ],
)
def test_client_options_before_or_after_the_command(inventory: FakeMaster, argv: list[str]) -> None:
    result = run(*argv)
    assert result.exit_code == 0, result.output
    assert inventory.clients == [("http://m:1", "T", Path("/d"))]


def test_client_options_from_the_environment(inventory: FakeMaster) -> None:
    env = {"LIVESTRAP_MASTER": "http://e:2", "LIVESTRAP_TOKEN": "E", "LIVESTRAP_DATA_DIR": "/e"}
    result = run("nodes", "list", env=env)
    assert result.exit_code == 0
    assert inventory.clients[-1] == ("http://e:2", "E", Path("/e"))
    run("nodes", "list", "--master", "http://flag:3", env=env)
    assert inventory.clients[-1] == ("http://flag:3", "E", Path("/e"))  # a flag wins


@pytest.mark.parametrize(
    "argv", [["nodes", "--help"], ["nodes", "list", "--help"], ["builds", "show", "--help"],
             ["vm", "boot", "--help"], ["settings", "set", "--help"]],
)  # fmt: skip
def test_help_makes_no_client(fake_master: FakeMaster, argv: list[str]) -> None:
    result = run(*argv)
    assert result.exit_code == 0
    assert fake_master.clients == []
    assert "--master" in result.stdout  # on the group, or named in the command's epilog


def test_nodes_list_formats(inventory: FakeMaster) -> None:
    table = run("nodes", "list").stdout.splitlines()
    assert table[0].split()[:2] == ["ID", "STATUS"]
    assert table[1].split()[:2] == [NODE["id"], "online"]  # piped: the whole id
    assert "SERIAL" in run("nodes", "list", "-o", "wide").stdout
    assert json.loads(run("nodes", "list", "-o", "json").stdout) == [NODE]
    assert yaml.safe_load(run("nodes", "list", "-o", "yaml").stdout) == [NODE]
    assert run("nodes", "list", "-o", "value").stdout == f"{NODE['id']}\n"
    assert run("nodes", "list", "-q", "--mac", NODE["boot_mac"]).stdout == f"{NODE['id']}\n"
    assert inventory.requests[-1].url.params["mac"] == NODE["boot_mac"]
    assert run("nodes", "list", "-o", "csv").exit_code == 2


def test_json_flag_is_a_deprecated_alias(inventory: FakeMaster) -> None:
    result = run("nodes", "list", "--mac", NODE["boot_mac"], "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)[0]["id"] == NODE["id"]
    assert result.stderr == "warning: --json is deprecated; use -o json\n"
    assert "--json" not in run("nodes", "list", "--help").stdout  # hidden


def test_nodes_show_describes_by_default(inventory: FakeMaster) -> None:
    out = run("nodes", "show", "4c4c").stdout
    assert out.startswith(f"ID:          {NODE['id']}\n") and "Firmware:    uefi" in out
    assert json.loads(run("nodes", "show", "4c4c", "-o", "json").stdout) == DETAIL
    assert run("nodes", "show", "4c4c", "-o", "value").stdout == f"{NODE['id']}\n"


def test_nodes_delete_names_the_full_id(inventory: FakeMaster) -> None:
    inventory.routes[f"DELETE /api/v1/nodes/{NODE['id']}"] = lambda r: httpx.Response(204)
    result = run("nodes", "delete", "4c4c")
    assert result.stdout == f"deleted node {NODE['id']}\n"
    assert inventory.paths()[-1] == f"DELETE /api/v1/nodes/{NODE['id']}"


def test_ambiguous_prefix_error_reaches_the_operator(fake_master: FakeMaster) -> None:
    detail = "node id prefix '4c' is ambiguous: 4c1, 4c2"
    fake_master.routes["GET /api/v1/nodes/4c"] = lambda r: httpx.Response(
        409, json={"detail": detail}
    )
    result = run("nodes", "show", "4c")
    assert result.exit_code != 0 and detail in str(result.exception)


def test_builds_list_and_quiet(fake_master: FakeMaster) -> None:
    build = {"id": "b-1", "seq": 1, "state": "failed", "stage": "rootfs", "progress": 0.2,
             "created": "2024-05-01T12:00:00Z", "started": None, "finished": None,
             "image_id": None, "reused": False, "error": "boom", "activate": False,
             "force": False, "log_url": "/api/v1/builds/b-1/log"}  # fmt: skip
    fake_master.routes["GET /api/v1/builds"] = lambda r: [build]
    assert run("builds", "list", "-q").stdout == "b-1\n"
    assert "boom" in run("builds", "list", "-o", "wide").stdout
    assert "boom" not in run("builds", "list").stdout
