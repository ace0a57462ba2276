"""Load the master's settings from flags, environment and config file, and say where each
value came from (`livestrap config show`, and the one-line-per-problem startup errors).

pydantic-settings keeps no record of which source gave a value, so `origins` asks the same
sources again, highest first, and names the first that has the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import EnvSettingsSource, TomlConfigSettingsSource

from livestrap.errors import OptionError
from livestrap.master.config import CONFIG_FILE, ENV_PREFIX, MasterSettings

DEFAULT_CONFIG = Path("/etc/livestrap/livestrap.toml")
CONFIG_ENV = "LIVESTRAP_CONFIG"
SECRET_KEYS = frozenset({"database_url"})  # never echoed whole: the URL may hold a password
_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def config_file(given: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The TOML file to read: --config, else LIVESTRAP_CONFIG (either must exist: a typo
    must not silently mean "defaults"), else /etc/livestrap/livestrap.toml if it exists."""
    env = os.environ if environ is None else environ
    if given is None and env.get(CONFIG_ENV, "").strip():
        given, how = Path(env[CONFIG_ENV].strip()), CONFIG_ENV
    else:
        how = "--config"
    if given is None:
        return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None
    if not given.is_file():
        state = "is not a file" if given.exists() else "does not exist"
        raise OptionError(f"{how} {given}: the config file {state}")
    return given


def env_name(key: str) -> str:
    return f"{ENV_PREFIX}{key.upper()}"


def _read_file(path: Path) -> dict[str, Any]:
    """The file's keys, or one line naming the file and what is wrong with it."""
    try:
        return TomlConfigSettingsSource(MasterSettings, path)()
    except tomllib.TOMLDecodeError as err:
        raise OptionError(f"config file {path}: not valid TOML: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        raise OptionError(f"config file {path}: cannot read it: {reason}") from None


def origins(flags: Mapping[str, Any], path: Path | None) -> dict[str, str]:
    """Where each key's value comes from: flag, env LIVESTRAP_X, file PATH, or default."""
    env = EnvSettingsSource(MasterSettings)()
    from_file = _read_file(path) if path is not None else {}
    found: dict[str, str] = {}
    for key in {*MasterSettings.model_fields, *from_file}:
        if key in flags:
            found[key] = "flag"
        elif key in env:
            found[key] = f"env {env_name(key)}"
        elif key in from_file:
            found[key] = f"file {path}"
        else:
            found[key] = "default"
    return found


def mask(key: str, value: Any) -> Any:
    """A value as it may be shown: a URL's password as ***."""
    if key in SECRET_KEYS and isinstance(value, str):
        return _PASSWORD.sub(r"\1***@", value)
    return value


def problem_lines(err: ValidationError, where: Mapping[str, str]) -> list[str]:
    """One line per problem: the key, what is wrong, the value given and where it came from."""
    lines = []
    for problem in err.errors():
        loc = problem.get("loc") or ("config",)
        key = str(loc[0])
        path = ".".join(str(part) for part in loc)
        given = problem.get("input")
        shown = "" if isinstance(given, Mapping) else f" (got {mask(key, given)!r:.60})"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "not a setting (docs/config.md lists them)"
        lines.append(f"{path}: {message}{shown}, from {where.get(key, 'default')}")
    return lines


def load_settings(
    flags: Mapping[str, Any] | None = None, config: Path | None = None
) -> MasterSettings:
    """The settings `livestrap serve` (and the builder) run with: `flags` are the options
    the operator gave (none at their default), `config` the --config path."""
    given = {k: v for k, v in (flags or {}).items() if v is not None}
    path = config_file(config)
    if path is not None:
        _read_file(path)  # a broken file is one line naming it, not a traceback
    token = CONFIG_FILE.set(path)
    try:
        return MasterSettings(**given)
    except ValidationError as err:
        lines = problem_lines(err, origins(given, path))
        raise OptionError("invalid settings:\n  " + "\n  ".join(lines)) from None
    finally:
        CONFIG_FILE.reset(token)


def effective(settings: MasterSettings, where: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every key with its value (masked; a derived default filled in) and `where` it came
    from (`origins`)."""
    derived = {"database_url": settings.db_url, "cache_dir": settings.layout.cache}
    rows = []
    for key in MasterSettings.model_fields:
        value = getattr(settings, key)
        if value is None and key in derived:
            value = derived[key]
        rows.append({"key": key, "value": mask(key, _plain(value)), "source": where[key]})
    return rows


def _plain(value: Any) -> Any:
    """JSON-ready: paths as text, tuples as lists."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value
