"""Validation regexes anchor on the end of the text (\\Z), not before a final newline ($):
an id, a label, a password hash or a MAC with a trailing newline is refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from livestrap.errors import SpecError, StoreError
from livestrap.master.artifacts import valid_image_id
from livestrap.master.errors import status_for
from livestrap.master.events import MAC_RE, normalize_mac
from livestrap.spec import parse_spec
from livestrap.store.manifest import check_image_id

pytestmark = [pytest.mark.unit, pytest.mark.security]

SRC = Path(__file__).resolve().parents[2] / "src"
HASH = "$y$j9T$abcdefgh$ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop"


def test_an_image_id_with_a_newline_is_refused() -> None:
    assert check_image_id("nl") == "nl"
    with pytest.raises(StoreError):
        check_image_id("nl\n")
    with pytest.raises(StoreError) as err:
        valid_image_id("nl\n")
    assert status_for(err.value) == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("label", "lab\n"),
        ("root_password_hash", HASH + "\n"),
        ("root_password_hash", HASH + "\nroot::0:0:::::"),
        ("packages", ["htop\n"]),
        ("kernel", "linux-image-amd64\n"),
        ("kernel_options", ["quiet\n"]),
        ("suite", "bookworm\n"),
        ("components", ["main\n"]),
        ("ssh_authorized_keys", ["ssh-ed25519 AAAA ops@x\nssh-ed25519 BBBB evil"]),
    ],
)
def test_spec_values_with_a_newline_are_refused(field: str, value: Any) -> None:
    with pytest.raises(SpecError, match=rf"\n  {field}(\[0\])?: "):
        parse_spec({field: value})


def test_the_same_values_without_the_newline_pass() -> None:
    spec = parse_spec({"label": "lab", "root_password_hash": HASH, "packages": ["htop"]})
    assert spec.root_password_hash == HASH and spec.label == "lab"


def test_a_repo_name_or_pin_with_a_newline_is_refused() -> None:
    repo = {"name": "acme", "uri": "http://acme.example/d", "suite": "s", "trusted": True}
    parse_spec({"repos": [repo]})
    with pytest.raises(SpecError, match=r"repos\[0\]\.name"):
        parse_spec({"repos": [{**repo, "name": "acme\n"}]})
    with pytest.raises(SpecError, match=r"repos\[0\]\.pin"):
        parse_spec({"repos": [{**repo, "pin": "origin acme.example\n"}]})


def test_a_mac_with_a_newline_is_refused() -> None:
    assert MAC_RE.match("52:54:00:12:34:56")
    assert MAC_RE.match("52:54:00:12:34:56\n") is None
    assert normalize_mac("52:54:00:12:34:56\n:ff") is None
    assert normalize_mac("52:54:00:12:34:56\n") == "52:54:00:12:34:56"  # stripped, never kept


def test_no_regex_in_src_ends_in_a_dollar() -> None:
    """`$` also matches before a final newline; every anchored regex in src uses \\Z."""
    literal = re.compile(r"""\br?f?r?(["'])((?:\\.|(?!\1).)*)\1""")
    offenders = []
    for path in SRC.rglob("*.py"):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not re.search(r"re\.(compile|match|search|fullmatch)\(|_RE\b|re\.compile", line):
                continue
            for m in literal.finditer(line):
                if m.group(0).startswith(("r", "rf", "fr")) and m.group(2).endswith("$"):
                    offenders.append(f"{path.relative_to(SRC)}:{n}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
