"""Spec errors one by one (field, message, line, column) for the console, and SSE framing
of a log line with a carriage return in it."""

from __future__ import annotations

import pytest

from livestrap.errors import Problem, SpecError
from livestrap.master.joblog import sse_data
from livestrap.spec import parse_spec
from livestrap.yamlfile import parse_yaml, top_key_at

pytestmark = pytest.mark.unit


def problems(text: str) -> tuple[Problem, ...]:
    with pytest.raises(SpecError) as caught:
        parse_spec(parse_yaml(text, "spec", plain=True), text=text)
    return caught.value.problems


def test_validation_problems_name_the_field_path_and_where() -> None:
    assert problems("packages:\n  - htop\n  - 7\nbogus: 1\n") == (
        Problem("packages.1", 'got the number 7; quote it: "7"', 3, 5),
        Problem("bogus", "unknown key", 4, 8),
    )


def test_the_cli_message_is_unchanged() -> None:
    with pytest.raises(SpecError, match=r"(?s)spec is invalid:\n  packages\[0\]: got the number"):
        parse_spec({"packages": [7]}, text="packages: [7]\n")


def test_a_non_mapping_is_a_top_level_problem() -> None:
    assert problems("- htop\n") == (Problem("", "must be a mapping of keys to values"),)


def test_a_syntax_error_names_the_key_it_is_in() -> None:
    with pytest.raises(SpecError) as caught:
        parse_yaml("label: x\npackages:\n\t- htop\n", "spec")
    (problem,) = caught.value.problems
    assert (problem.field, problem.line, problem.column) == ("packages", 3, 1)
    assert problem.message.startswith("found character '\\t' that cannot start any token")
    assert "at line 3, column 1" in str(caught.value)  # the CLI's message as before


def test_plain_refuses_anchors() -> None:
    with pytest.raises(SpecError, match="anchors and aliases"):
        parse_yaml("a: &x [1]\nb: *x\n", "spec", plain=True)


def test_top_key_at() -> None:
    text = "# c\nlabel: x\npackages:\n  - a\n  - b\n"
    assert [top_key_at(text, n) for n in range(5)] == [
        "",
        "label",
        "packages",
        "packages",
        "packages",
    ]


def test_sse_data_keeps_a_carriage_return_inside_its_event() -> None:
    assert sse_data("plain") == "data: plain\n\n"
    assert sse_data("ends\r") == "data: ends\n\n"
    assert sse_data("10%\r50%\revent: end") == "data: 10%\ndata: 50%\ndata: event: end\n\n"


def test_listed_is_the_problems_or_the_message_as_one() -> None:
    one = Problem("packages.0", "bad", line=3)
    assert SpecError("x", [one]).listed() == [one]
    assert SpecError("the spec is empty").listed() == [Problem("", "the spec is empty")]
