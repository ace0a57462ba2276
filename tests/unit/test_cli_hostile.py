"""What a node reports, and what an operator mistypes, cannot drive the terminal, aim a
request elsewhere, or end in a traceback."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fake_master import FakeMaster, node_summary
from fake_master import fake_master as fake_master
from typer.testing import CliRunner

from livestrap.cli import app
from livestrap.cli.client import make_client
from livestrap.cli.output import printable
from livestrap.errors import OptionError
from livestrap.master.lookup import _next_alnum

pytestmark = pytest.mark.unit

ESCAPES = "\x1b[31mred\x1b]0;title\x07\x9b2J"
NODE = node_summary("4c4c4544-0042-3510-8052-b2c04f4d4e31", "52:54:00:12:34:56",
                    vendor=ESCAPES, product="box\rover")  # fmt: skip
DETAIL = {**NODE, "macs": [NODE["boot_mac"]], "heartbeat_s": 30, "facts_hash": None,
          "facts": {"system": {"vendor": ESCAPES}}, "failures": [
              {"collector": "nics", "error": "bad\x1b[2Jthing"}]}  # fmt: skip


def test_printable_replaces_control_characters() -> None:
    assert printable("plain text [x]") == "plain text [x]"
    assert printable("a\x1bb\x07c\rd\x9be") == "a\ufffdb\ufffdc\ufffdd\ufffde"


@pytest.mark.parametrize("argv", [["nodes", "list"], ["nodes", "show", NODE["id"]]])
def test_node_strings_reach_no_terminal_as_escapes(
    fake_master: FakeMaster, argv: list[str]
) -> None:
    fake_master.routes["GET /api/v1/nodes"] = lambda request: [NODE]
    fake_master.routes[f"GET /api/v1/nodes/{NODE['id']}"] = lambda request: DETAIL
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 0, result.output
    assert "red" in result.output
    assert not any(c in result.output for c in "\x1b\x07\r\x9b"), repr(result.output)


@pytest.mark.parametrize("ref", ["../images/x", "a?b", "a%2e", "", "x/y"])
def test_an_id_that_is_no_id_sends_nothing(fake_master: FakeMaster, ref: str) -> None:
    result = CliRunner().invoke(app, ["nodes", "show", ref])
    assert result.exit_code != 0
    assert fake_master.requests == []


@pytest.mark.parametrize("url", ["http://x:abc", "http://[::1", "ftp://x", "x", ""])
def test_a_bad_master_url_is_a_usage_error(url: str, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="expected http://HOST:PORT"):
        make_client(url, "token", tmp_path)


@pytest.mark.parametrize("token", ["é", "a\nb", ""])
def test_a_token_that_cannot_be_a_header_is_a_usage_error(token: str, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="not printable ASCII"):
        make_client("http://127.0.0.1:8080", token, tmp_path)


def test_a_renamed_flag_and_its_old_name_together_are_refused() -> None:
    argv = ["netboot", "nginx-config", "--upstream", "http://a:1", "--master", "http://b:2"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code != 0
    assert "not both" in str(result.exception)


def test_prefix_upper_bounds_are_no_punctuation() -> None:
    assert [_next_alnum(c) for c in "09afzZ"] == ["1", "A", "b", "g", None, "a"]


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        (httpx.Response(404, json={"detail": "no build 'b1'"}), "404: no build 'b1'"),
        (httpx.Response(422, json=[{"loc": ["x"]}]), "422: [{"),  # a list: its text
        (httpx.Response(500, text="<html>oops</html>"), "500: <html>oops</html>"),
    ],
)
def test_a_refused_build_log_says_why(
    fake_master: FakeMaster, answer: httpx.Response, said: str
) -> None:
    fake_master.routes["GET /api/v1/builds/b1/log"] = lambda request: answer
    result = CliRunner().invoke(app, ["builds", "log", "b1"])
    assert result.exit_code != 0
    assert said in str(result.exception)
