"""`livestrap builder`: run the build worker as its own process (root, next to a master
whose role is "api"). It reads the same settings as `serve` (master.config_load)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from livestrap.cli.options import ConfigFile, SettingsCacheDir, SettingsDataDir
from livestrap.master.builder_proc import run_builder
from livestrap.master.config_load import load_settings

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"  # journald adds the time


def builder(
    config: ConfigFile = None,
    data_dir: SettingsDataDir = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help=r"The master's database URL \[default: SQLite in DATA_DIR; or "
            "LIVESTRAP_DATABASE_URL, which keeps a password out of ps].",
        ),
    ] = None,
    cache_dir: SettingsCacheDir = None,
) -> None:
    """Run queued builds (the master's, from its database) until stopped; as root."""
    settings = load_settings(
        {"data_dir": data_dir, "database_url": database_url, "cache_dir": cache_dir}, config
    )
    if not logging.getLogger().handlers:
        level = "DEBUG" if settings.log_level == "trace" else settings.log_level.upper()
        logging.basicConfig(level=level, format=LOG_FORMAT)
    run_builder(settings)
