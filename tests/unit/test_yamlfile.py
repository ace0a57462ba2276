"""YAML read for people: syntax errors name line and column, YAML 1.1 booleans are explained."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.errors import SpecError
from livestrap.spec import parse_spec
from livestrap.yamlfile import node_at, not_a_string, parse_yaml, read_yaml

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: b: c\n", "s.yaml is not valid YAML at line 1, column 5: mapping values are not"),
        (
            "label: demo\npackages: [curl, jq\nsuite: x\n",
            "s.yaml is not valid YAML at line 3, column 6: expected ',' or ']', but got ':'"
            " (while parsing a flow sequence at line 2, column 11)",
        ),
        ("label: demo\n\tsuite: x\n", "indent with spaces, YAML does not allow tabs there"),
        ('label: "demo\n', "(while scanning a quoted scalar at line 1, column 8)"),
    ],
)
def test_syntax_errors_say_where_on_one_line(text: str, expected: str) -> None:
    with pytest.raises(SpecError) as exc:
        parse_yaml(text, "s.yaml")
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read spec .*nope\.yaml: No such file"):
        read_yaml(tmp_path / "nope.yaml", "spec ")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SpecError, match="not UTF-8 text"):
        read_yaml(tmp_path / "bin.yaml")


def test_node_at_follows_keys_and_indexes() -> None:
    text = "label: x\nrepos:\n  - name: a\n  - name: off\n"
    node = node_at(text, ("repos", 1, "name"))
    assert node is not None
    assert (node.value, node.start_mark.line) == ("off", 3)
    assert node_at(text, ("repos", 5, "name")) is None
    assert node_at(text, ("label", "deeper")) is None
    assert node_at("a: [", ("a",)) is None


def test_not_a_string_explains_the_quoting() -> None:
    assert not_a_string(False, "label") == (
        "got the boolean false (YAML reads unquoted no/yes/on/off as booleans); "
        'quote it: label: "no"'
    )
    assert not_a_string(True, "name", "On") == (
        'got the boolean true (YAML reads unquoted no/yes/on/off as booleans); quote it: name: "On"'
    )
    assert not_a_string(False, None, "false") == 'got the boolean false; quote it: "false"'
    assert not_a_string(12.1, "suite", "12.10") == 'got the number 12.10; quote it: suite: "12.10"'
    assert not_a_string("x", "label") is None


def test_spec_from_json_gets_the_hint_too() -> None:
    """Without the YAML text (`settings set` sends JSON), the hint still explains."""
    with pytest.raises(SpecError) as exc:
        parse_spec({"label": False, "packages": [True]}, source="settings")
    assert str(exc.value).splitlines()[1:] == [
        "  label: got the boolean false (YAML reads unquoted no/yes/on/off as booleans); "
        'quote it: label: "no"',
        "  packages[0]: got the boolean true (YAML reads unquoted no/yes/on/off as booleans); "
        'quote it: "yes"',
    ]
