"""A spec's validation errors as an operator reads them: one line per problem, naming the
field path and, when the YAML text is at hand, its line (shared by the CLI and the API);
and the same problems one by one, for the console to list next to the text."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from livestrap.errors import Problem
from livestrap.yamlfile import node_at, not_a_string


def _message(e: ErrorDetails, node: yaml.Node | None) -> str:
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown key"
    elif e["type"] == "string_type":
        key = e["loc"][-1] if e["loc"] and isinstance(e["loc"][-1], str) else None
        written = node.value if isinstance(node, yaml.ScalarNode) else None
        msg = not_a_string(e["input"], key, written) or msg
    return msg


def _node(e: ErrorDetails, text: str | None) -> yaml.Node | None:
    return node_at(text, e["loc"]) if text and e["loc"] else None


def format_validation_error(
    err: ValidationError, source: str = "spec", text: str | None = None
) -> str:
    """One line per problem, each naming the field path ('repos[0].priority: ...'); with
    the YAML `text` it came from, also the line, and what was written where it matters."""
    lines = [f"{source} is invalid:"]
    for e in err.errors():
        path = ""
        for part in e["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        node = _node(e, text)
        line = f" (line {node.start_mark.line + 1})" if node else ""
        lines.append(f"  {path or '(top level)'}: {_message(e, node)}{line}")
    return "\n".join(lines)


def validation_problems(err: ValidationError, text: str | None = None) -> list[Problem]:
    """The problems of `err` one by one: field 'repos.0.priority', line/column from `text`."""
    problems = []
    for e in err.errors():
        node = _node(e, text)
        mark: Any = node.start_mark if node else None
        problems.append(
            Problem(
                field=".".join(str(part) for part in e["loc"]),
                message=_message(e, node),
                line=mark.line + 1 if mark else None,
                column=mark.column + 1 if mark else None,
            )
        )
    return problems
