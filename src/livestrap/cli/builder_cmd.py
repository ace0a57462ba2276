"""`livestrap builder`: run the build worker as its own process (root, next to a master
whose role is "api")."""

from __future__ import annotations

import logging
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from livestrap.cli.options import DEFAULT_DATA_DIR, CacheDir
from livestrap.errors import OptionError
from livestrap.master.builder_proc import run_builder
from livestrap.master.config import MasterSettings

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # journald adds the time


def _file_settings(config: Path | None) -> dict[str, Any]:
    """The config file's keys the builder uses (a bridge until master.config reads it)."""
    if config is None:
        return {}
    try:
        data = tomllib.loads(config.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise OptionError(f"--config {config}: {err}") from None
    return {k: data[k] for k in ("data_dir", "database_url", "cache_dir") if k in data}


def builder(
    config: Annotated[
        Path | None,
        typer.Option("--config", envvar="LIVESTRAP_CONFIG", help="The master's TOML config file."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            envvar="LIVESTRAP_DATA_DIR",
            help=rf"The master's data dir \[default: {DEFAULT_DATA_DIR}].",
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            envvar="LIVESTRAP_DATABASE_URL",
            help=r"The master's database URL \[default: SQLite in DATA_DIR].",
        ),
    ] = None,
    cache_dir: CacheDir = None,
) -> None:
    """Run queued builds (the master's, from its database) until stopped; as root."""
    file = _file_settings(config)
    chosen = data_dir or Path(file.get("data_dir", DEFAULT_DATA_DIR))
    settings = MasterSettings(
        data_dir=chosen,
        database_url=database_url or file.get("database_url"),
        cache_dir=cache_dir or (Path(file["cache_dir"]) if "cache_dir" in file else None),
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    run_builder(settings)
