"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

DEFAULT_DATA_DIR = Path("/var/lib/livestrap")

DataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="LIVESTRAP_DATA_DIR",
        help="Where images, caches and logs live.",
        show_default=True,
    ),
]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="LIVESTRAP_CACHE_DIR",
        help="Package cache shared by builds [default: DATA_DIR/cache].",
    ),
]


def warn_deprecated(old: str, new: str) -> None:
    """Scripts keep working; their authors learn the new spelling on stderr."""
    typer.echo(f"warning: {old} is deprecated; use {new}", err=True)


def renamed(value: str, old_value: str | None, old: str, new: str) -> str:
    """The value of a renamed option: the old name still works, with a warning."""
    if old_value is None:
        return value
    warn_deprecated(old, new)
    return old_value
