"""The build settings: one BuildSpec document in the `settings` table, read and written
here, and the rules a spec the master builds must keep (the API body: schemas.settings).

A spec that came through the API is checked by `parse_spec` itself, with `<data-dir>/spec`
as base and every path confined to it (api_rules), as the CLI checks one.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from livestrap.errors import Problem, SpecError
from livestrap.master.config import MasterSettings
from livestrap.master.models import SettingRow
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec, ResolvedSpec, parse_spec
from livestrap.specpaths import PathRules
from livestrap.yamlfile import PlainDumper, parse_yaml

SETTINGS_KEY = "build_spec"
MAX_SPEC_CHARS = 100_000  # a spec typed into the console; real ones are a few KiB
TOO_LONG = Problem("", f"longer than {MAX_SPEC_CHARS} characters")


def sqlite_file(settings: MasterSettings) -> Path | None:
    url = settings.db_url
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def master_rules(settings: MasterSettings) -> PathRules:
    """What any spec the master builds may name: nothing of the master's secrets."""
    db = sqlite_file(settings)
    return PathRules(data_dir=settings.data_dir, protected_files=(db,) if db else ())


def api_rules(settings: MasterSettings) -> PathRules:
    """A spec sent through the API: also confined to <data-dir>/spec, its file:// URLs to
    that folder and to settings.file_mirror_roots."""
    return replace(
        master_rules(settings),
        confine=settings.spec_dir,
        file_roots=(settings.spec_dir, *settings.file_mirror_roots),
    )


def build_rules(settings: MasterSettings) -> PathRules:
    """The build worker's last word on a queued build (every one came through the API):
    what it names in spec/ (or under a file root) must still resolve there, since a later
    upload may have put a link where a folder was; the master's own additions (its
    copy:// repo, host keyrings and mirrors) lie outside and get master_rules."""
    return replace(api_rules(settings), only_named=True)


def parse_api_spec(
    data: Any, settings: MasterSettings, source: str, text: str | None = None
) -> BuildSpec:
    """parse_spec for what came through the API: paths relative to (and within) spec/.
    `text`: the YAML `data` was read from (the console), for lines in the errors."""
    rules = api_rules(settings)
    return parse_spec(data, base_dir=settings.spec_dir, source=source, text=text, rules=rules)


def check_spec(
    data: Any, settings: MasterSettings, source: str = "spec", text: str | None = None
) -> tuple[BuildSpec, ResolvedSpec]:
    """Validate like the CLI: (spec as given, paths confined to spec/; resolved)."""
    spec = parse_api_spec(data, settings, source, text)
    return spec, resolve(spec, source=source)


def read_settings(session: Session) -> dict[str, Any] | None:
    row = session.get(SettingRow, SETTINGS_KEY)
    return None if row is None else dict(row.value)


def write_settings(session: Session, spec: BuildSpec) -> dict[str, Any]:
    value = spec.model_dump(mode="json")
    session.merge(SettingRow(key=SETTINGS_KEY, value=value, updated_at=time.time()))
    return value


def shown_settings(session: Session) -> dict[str, Any]:
    """The stored spec as saved, not re-validated (the defaults when nothing was saved)."""
    data = read_settings(session)
    return BuildSpec().model_dump(mode="json") if data is None else data


def effective_settings(session: Session, settings: MasterSettings) -> dict[str, Any]:
    """The stored spec with every default filled (SpecError when it cannot be resolved)."""
    spec = parse_api_spec(read_settings(session), settings, source="settings")
    return resolve(spec, source="settings").model_dump(mode="json")


def replace_settings(session: Session, data: Any, settings: MasterSettings) -> dict[str, Any]:
    """Check `data` like `livestrap spec check`, then store it as the settings."""
    spec, _ = check_spec(data, settings, source="settings")
    return write_settings(session, spec)


def settings_from_yaml(text: str, settings: MasterSettings) -> BuildSpec:
    """The console's text, checked as replace_settings checks the API's JSON: YAML (no
    anchors), then check_spec with the text for lines. SpecError, with .problems."""
    if len(text) > MAX_SPEC_CHARS:
        raise SpecError(f"settings: over {MAX_SPEC_CHARS} characters", [TOO_LONG])
    data = parse_yaml(text, "settings", plain=True)
    spec, _ = check_spec(data, settings, source="settings", text=text)
    return spec


def replace_settings_yaml(session: Session, text: str, settings: MasterSettings) -> dict[str, Any]:
    """The console's save: nothing is stored unless settings_from_yaml passes."""
    return write_settings(session, settings_from_yaml(text, settings))


def as_yaml(data: Any) -> str:
    """A spec as the console shows it: block YAML in the fields' own order."""
    return yaml.dump(data, Dumper=PlainDumper, sort_keys=False, allow_unicode=True)
