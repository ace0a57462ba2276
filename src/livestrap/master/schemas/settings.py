"""The build settings: one BuildSpec document in the `settings` table, and its API body.

The body is a BuildSpec in the API docs, but checked by `parse_spec` itself:
FastAPI's own validation of a BuildSpec would take relative paths from the master's
working directory and word its errors differently from the CLI; the raw JSON is passed
through instead and validated with the data dir as base (see routes/settings.py).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import PlainValidator
from sqlalchemy.orm import Session

from livestrap.apt import pin_conflicts
from livestrap.errors import SpecError
from livestrap.master.models import SettingRow
from livestrap.spec import BuildSpec, parse_spec, resolve_spec

SETTINGS_KEY = "build_spec"


def _as_sent(value: Any) -> Any:
    return value


SpecBody = Annotated[Any, PlainValidator(_as_sent, json_schema_input_type=BuildSpec)]


def check_spec(data: Any, data_dir: Path, source: str = "spec") -> tuple[BuildSpec, BuildSpec]:
    """Validate like the CLI: (spec as given, relative paths from the data dir; resolved)."""
    spec = parse_spec(data, base_dir=data_dir, source=source)
    resolved = resolve_spec(spec)
    problems = pin_conflicts(resolved)
    if problems:
        raise SpecError(f"{source} is invalid:\n  " + "\n  ".join(problems))
    return spec, resolved


def read_settings(session: Session) -> dict[str, Any] | None:
    row = session.get(SettingRow, SETTINGS_KEY)
    return None if row is None else dict(row.value)


def write_settings(session: Session, spec: BuildSpec) -> dict[str, Any]:
    value = spec.model_dump(mode="json")
    session.merge(SettingRow(key=SETTINGS_KEY, value=value, updated_at=time.time()))
    return value
