"""The body of PUT /api/v1/settings: a BuildSpec in the API docs, passed through as sent.

FastAPI's own validation of a BuildSpec would take relative paths from the master's
working directory and word its errors differently from the CLI; the raw JSON is passed
through instead and validated with `<data-dir>/spec` as base, every path confined to it
(master.services.settings.check_spec).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import PlainValidator

from livestrap.spec import BuildSpec


def _as_sent(value: Any) -> Any:
    return value


SpecBody = Annotated[Any, PlainValidator(_as_sent, json_schema_input_type=BuildSpec)]
