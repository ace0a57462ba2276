"""Reading YAML that people write: errors say where (line, column) and what to change.

One place for every YAML file the CLI reads (specs, `settings set`, `builds start
--overrides`), so each of them reports a syntax error or a YAML 1.1 surprise (unquoted
`no` is the boolean false) the same way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from livestrap.errors import Problem, SpecError

TOP_KEY = re.compile(r"([A-Za-z_][\w-]*)\s*:")


def read_text(path: Path, what: str = "") -> str:
    """The file's text; `what` ("spec ") names it in the error when it cannot be read."""
    try:
        return path.read_text()
    except OSError as err:
        raise SpecError(f"cannot read {what}{path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise SpecError(f"cannot read {what}{path}: not UTF-8 text (byte {err.start})") from None


def where(mark: yaml.Mark | None) -> str:
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def describe(err: yaml.YAMLError) -> str:
    """pyyaml's message on one line: where, the problem, and what it was parsing."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return ": " + " ".join(str(err).split())
    problem = err.problem or err.context or "syntax error"
    text = f"{where(err.problem_mark or err.context_mark)}: {problem}"
    if err.problem and err.context:
        text += f" ({err.context}{where(err.context_mark)})"
    if "'\\t'" in problem:
        text += "; indent with spaces, YAML does not allow tabs there"
    return text


def top_key_at(text: str, line: int) -> str:
    """The top-level key whose block holds `line` (0-based), "" before the first: which
    field a syntax error is in, as far as broken YAML can tell."""
    for row in reversed(text.splitlines()[: line + 1]):
        if found := TOP_KEY.match(row):
            return found[1]
    return ""


def syntax_problem(err: yaml.YAMLError, text: str) -> Problem:
    """A syntax error as one Problem: the field it is in, the problem, line and column."""
    if not isinstance(err, yaml.MarkedYAMLError):
        return Problem("", " ".join(str(err).split()))
    mark = err.problem_mark or err.context_mark
    message = describe(err).split(": ", 1)[-1]
    if mark is None:
        return Problem("", message)
    return Problem(top_key_at(text, mark.line), message, mark.line + 1, mark.column + 1)


def parse_yaml(text: str, source: str, *, plain: bool = False) -> Any:
    """The document in `text`; a syntax error becomes a SpecError naming `source` and where.
    `plain`: refuse anchors and aliases too (text from a web form: load_plain_yaml)."""
    try:
        return load_plain_yaml(text) if plain else yaml.safe_load(text)
    except yaml.YAMLError as err:
        message = f"{source} is not valid YAML{describe(err)}"
        raise SpecError(message, [syntax_problem(err, text)]) from None


def read_yaml(path: Path, what: str = "") -> Any:
    return parse_yaml(read_text(path, what), str(path))


def node_at(text: str, loc: tuple[int | str, ...]) -> yaml.Node | None:
    """The node a validation error's location (("repos", 0, "name")) points to, if the
    text has one there: it holds what was written, and on which line."""
    try:
        node: yaml.Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


def not_a_string(value: Any, key: str | None, written: str | None = None) -> str | None:
    """Why a string field got a boolean or a number, and how to quote it (None: neither).
    `written` is the text as it stands in the file, when known."""
    if isinstance(value, bool):
        spelled = written or ("yes" if value else "no")
        got = f"the boolean {str(value).lower()}"
        if spelled.lower() not in ("true", "false"):
            got += " (YAML reads unquoted no/yes/on/off as booleans)"
    elif isinstance(value, int | float):
        spelled = written or str(value)
        got = f"the number {spelled}"
    else:
        return None
    quoted = json.dumps(spelled)
    return f"got {got}; quote it: " + (f"{key}: {quoted}" if key else quoted)


class _PlainLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors and aliases: a few hundred bytes of aliases expand
    to gigabytes once walked (the "billion laughs"), and no livestrap file needs them."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&, *) are not allowed", event.start_mark
            )
        return super().compose_node(parent, index)  # type: ignore[arg-type]


def load_plain_yaml(text: str) -> Any:
    """yaml.safe_load without anchors or aliases (yaml.YAMLError on any)."""
    return yaml.load(text, Loader=_PlainLoader)  # a SafeLoader subclass


def load_plain_yaml_fast(text: str) -> Any:
    """load_plain_yaml's values, parsed by libyaml when PyYAML has it: an image's
    metadata.yaml (tens of KB with its driver coverage) takes ~30 ms instead of ~250,
    and the store reads every image's on each listing. The events are checked for
    anchors and aliases first (streamed: nothing expands), then loaded with the same
    safe constructor and resolver."""
    if not yaml.__with_libyaml__:
        return load_plain_yaml(text)
    for event in yaml.parse(text, Loader=yaml.CSafeLoader):
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise yaml.composer.ComposerError(
                None,
                None,
                "anchors and aliases (&, *) are not allowed",
                event.start_mark,  # type: ignore[arg-type]  # libyaml's Mark, alike
            )
    return yaml.load(text, Loader=yaml.CSafeLoader)


class PlainDumper(yaml.SafeDumper):
    """SafeDumper that never writes anchors or aliases, so what it writes loads again."""

    def ignore_aliases(self, data: Any) -> bool:
        return True
