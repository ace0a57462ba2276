"""A spec's validation errors as an operator reads them: one line per problem, naming the
field path and, when the YAML text is at hand, its line (shared by the CLI and the API)."""

from __future__ import annotations

import yaml
from pydantic import ValidationError

from livestrap.yamlfile import node_at, not_a_string


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
        node = node_at(text, e["loc"]) if text and e["loc"] else None
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        elif e["type"] == "string_type":
            key = e["loc"][-1] if e["loc"] and isinstance(e["loc"][-1], str) else None
            written = node.value if isinstance(node, yaml.ScalarNode) else None
            msg = not_a_string(e["input"], key, written) or msg
        line = f" (line {node.start_mark.line + 1})" if node else ""
        lines.append(f"  {path or '(top level)'}: {msg}{line}")
    return "\n".join(lines)
