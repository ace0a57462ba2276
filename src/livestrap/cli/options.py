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
JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="LIVESTRAP_CACHE_DIR",
        help=r"Package cache shared by builds \[default: DATA_DIR/cache].",
    ),
]
