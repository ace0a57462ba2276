"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from livestrap.errors import StoreError
from livestrap.workdirs import ensure_writable_dir

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
        help=r"Package cache shared by builds \[default: DATA_DIR/cache].",
    ),
]


def _writable_data_dir(path: Path) -> Path:
    return ensure_writable_dir(path, "data dir", "--data-dir or LIVESTRAP_DATA_DIR")


def _writable_cache_dir(path: Path | None) -> Path | None:
    if path is None:
        return None
    return ensure_writable_dir(path, "cache dir", "--cache-dir or LIVESTRAP_CACHE_DIR")


# For commands that write into the data dir, and may create it (build, repo publish).
WritableDataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="LIVESTRAP_DATA_DIR",
        help="Where images, caches and logs live (made if missing).",
        show_default=True,
        callback=_writable_data_dir,
    ),
]
WritableCacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="LIVESTRAP_CACHE_DIR",
        help=r"Package cache shared by builds \[default: DATA_DIR/cache].",
        callback=_writable_cache_dir,
    ),
]


def existing_data_dir(path: Path) -> Path:
    """For commands that only use a data dir: a missing one is a typo or the wrong machine,
    not an empty store (commands that create one use `DataDir`)."""
    if not path.exists():
        raise StoreError(
            f"data dir {path} does not exist; pass the master's data dir with --data-dir "
            "or LIVESTRAP_DATA_DIR (`livestrap serve` or `livestrap build` creates one)"
        )
    if not path.is_dir():
        raise StoreError(f"data dir {path} is not a directory; pass the master's data dir")
    return path


ExistingDataDir = Annotated[
    Path,
    typer.Option(
        "--data-dir",
        envvar="LIVESTRAP_DATA_DIR",
        help="Where images, caches and logs live.",
        show_default=True,
        callback=existing_data_dir,
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
