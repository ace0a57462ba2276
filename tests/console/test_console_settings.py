"""/ui/settings against a real master: the spec as YAML, problems listed by field and
line with nothing saved, a good spec saved as PUT /api/v1/settings would, the effective
spec, the Check button, CSRF."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import yaml

from masterproc import Master

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
GOOD = """\
label: from-the-console
mirror: http://deb.example/debian
mirror_key: archive.asc
packages:
  - htop
  - "less"
"""
Console = tuple[httpx.Client, str]


@pytest.fixture(scope="module", autouse=True)
def key_file(master: Master) -> None:
    (master.data_dir / "spec").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "keys/archive-test.asc", master.data_dir / "spec/archive.asc")


def stored(master: Master) -> dict[str, Any]:
    with master.admin() as admin:
        return cast(dict[str, Any], admin.get("/api/v1/settings").raise_for_status().json())


def errors_of(page: str) -> list[str]:
    """The text of each li of ul#spec-errors."""
    found = re.search(r'<ul id="spec-errors"[^>]*>(.*?)</ul>', page, re.S)
    assert found, "no ul#spec-errors"
    items = re.findall(r"<li>(.*?)</li>", found[1], re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)) for item in items]


def save(console: Console, text: str) -> httpx.Response:
    client, token = console
    return client.post("/ui/settings", data={"csrf_token": token, "spec": text})


def test_the_page_shows_the_stored_spec_and_the_effective_one(
    master: Master, console: Console
) -> None:
    client, _ = console
    page = client.get("/ui/settings")
    assert page.status_code == 200
    for part in ('form id="settings" method="post" action="/ui/settings"',
                 'textarea id="spec" name="spec"', 'id="save"', 'pre id="effective"'):  # fmt: skip
        assert part in page.text
    text = re.search(r'<textarea id="spec"[^>]*>(.*?)</textarea>', page.text, re.S)
    assert text and yaml.safe_load(html.unescape(text[1])) == stored(master)
    assert 'id="saved"' not in page.text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # a YAML syntax error: the field it is in, where the parser stopped
            "label: x\npackages:\n  - [htop\n",
            "packages: expected ',' or ']', but got '<stream end>'",
        ),
        ("label: x\npackages:\n\t- htop\n", "packages: found character '\\t'"),
        (  # a schema error: the field path, the line and column of the value
            "label: x\npackages:\n  - htop\n  - 7\n",
            'packages.1: got the number 7; quote it: "7" (line 4, column 5)',
        ),
        ("label: x\nbogus: 1\n", "bogus: unknown key (line 2, column 8)"),
        ("label: x\nmirror: ftp://mirror.example/debian\n", "mirror: "),
        ("just a string\n", "(top level): must be a mapping of keys to values"),
    ],
)
def test_a_bad_spec_is_listed_by_field_and_nothing_is_saved(
    master: Master, console: Console, text: str, expected: str
) -> None:
    before = stored(master)
    answer = save(console, text)
    assert answer.status_code == 422
    errors = errors_of(answer.text)
    assert any(e.startswith(expected) for e in errors), errors
    typed = re.search(r'<textarea id="spec"[^>]*>(.*?)</textarea>', answer.text, re.S)
    assert typed and html.unescape(typed[1]) == text  # the text as typed
    assert stored(master) == before


def test_syntax_errors_say_line_and_column(console: Console) -> None:
    errors = errors_of(save(console, "label: x\npackages:\n\t- htop\n").text)
    assert errors[0].endswith("(line 3, column 1)")


def test_a_good_spec_is_saved(master: Master, console: Console) -> None:
    client, _ = console
    answer = save(console, GOOD)
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/settings?saved=1"
    value = stored(master)
    assert value["label"] == "from-the-console" and value["packages"] == ["htop", "less"]
    assert value["mirror_key"] == str(master.data_dir / "spec/archive.asc")  # as the API stores
    page = client.get(answer.headers["location"]).text
    assert '<p id="saved"' in page and "spec-errors" not in page
    effective = re.search(r'<pre id="effective">(.*?)</pre>', page, re.S)
    assert effective
    shown = yaml.safe_load(html.unescape(effective[1]))
    assert shown["label"] == "from-the-console" and shown["suite"] and shown["kernel"]


def test_check_validates_without_saving(master: Master, console: Console) -> None:
    client, token = console
    before = stored(master)
    headers = {"X-CSRF-Token": token, "HX-Request": "true"}
    bad = client.post("/ui/settings/check", data={"spec": "bogus: 1\n"}, headers=headers)
    assert bad.status_code == 200 and "<html" not in bad.text
    assert errors_of(bad.text) == ["bogus: unknown key (line 1, column 8)"]
    good = client.post("/ui/settings/check", data={"spec": GOOD}, headers=headers)
    assert 'id="spec-ok"' in good.text and "spec-errors" not in good.text
    assert stored(master) == before


def test_saving_needs_the_csrf_token(master: Master, console: Console) -> None:
    client, token = console
    before = stored(master)
    assert client.post("/ui/settings", data={"spec": "label: csrf\n"}).status_code == 403
    assert client.post("/ui/settings/check", data={"spec": "label: x\n"}).status_code == 403
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    answer = client.post("/ui/settings", data={"csrf_token": token, "spec": "label: csrf\n"},
                         headers=evil)  # fmt: skip
    assert answer.status_code == 403
    assert stored(master) == before


def test_hostile_text_is_shown_as_text(master: Master, console: Console) -> None:
    text = "label: x\n</textarea><script>alert(1)</script>: 1\n"
    answer = save(console, text)
    assert answer.status_code == 422
    assert "<script>alert(1)</script>" not in answer.text
    assert "&lt;/textarea&gt;&lt;script&gt;" in answer.text
