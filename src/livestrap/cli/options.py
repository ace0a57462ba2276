"""Options shared by several commands."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from livestrap.errors import OptionError, StoreError
from livestrap.workdirs import ensure_writable_dir

DEFAULT_DATA_DIR = Path("/var/lib/livestrap")
DATA_DIR_HELP = "Where images, caches and logs live."
CACHE_DIR_HELP = r"Package cache shared by builds \[default: DATA_DIR/cache]."


def existing_data_dir(path: Path) -> Path:
    """For commands that only use a data dir: a missing one is a typo or the wrong machine,
    not an empty store (commands that create one use `WritableDataDir`)."""
    if not path.exists():
        raise StoreError(
            f"data dir {path} does not exist; pass the master's data dir with --data-dir "
            "or LIVESTRAP_DATA_DIR (`livestrap serve` or `livestrap build` creates one)"
        )
    if not path.is_dir():
        raise StoreError(f"data dir {path} is not a directory; pass the master's data dir")
    return path


def writable_data_dir(path: Path) -> Path:
    return ensure_writable_dir(path, "data dir", "--data-dir or LIVESTRAP_DATA_DIR", private=True)


def writable_cache_dir(path: Path | None) -> Path | None:
    if path is None:
        return None
    return ensure_writable_dir(path, "cache dir", "--cache-dir or LIVESTRAP_CACHE_DIR")


def _data_dir(help: str, check: Callable[[Path], Path] | None = None) -> Any:
    return typer.Option(
        "--data-dir", envvar="LIVESTRAP_DATA_DIR", help=help, show_default=True, callback=check
    )


def _cache_dir(check: Callable[[Path | None], Path | None] | None = None) -> Any:
    return typer.Option("--cache-dir", envvar="LIVESTRAP_CACHE_DIR", help=CACHE_DIR_HELP,
                        callback=check)  # fmt: skip


# The data dir as is (serve checks it itself; netboot only names paths in it) ...
DataDir = Annotated[Path, _data_dir(DATA_DIR_HELP)]
# ... that must exist (commands that only read a store) ...
ExistingDataDir = Annotated[Path, _data_dir(DATA_DIR_HELP, existing_data_dir)]
# ... or is made if missing and must take files (build, repo publish).
WritableDataDir = Annotated[
    Path, _data_dir("Where images, caches and logs live (made if missing).", writable_data_dir)
]
CacheDir = Annotated[Path | None, _cache_dir()]
# The same for commands that take the master's settings (serve, builder): no envvar= here,
# the settings read LIVESTRAP_DATA_DIR themselves and so know where a value came from.
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=r"The TOML config file (docs/config.md) \[default: LIVESTRAP_CONFIG, else "
        "/etc/livestrap/livestrap.toml if it exists].",
        show_default=False,
    ),
]
SettingsDataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help=DATA_DIR_HELP + r" \[default: /var/lib/livestrap]"),
]
SettingsCacheDir = Annotated[Path | None, typer.Option("--cache-dir", help=CACHE_DIR_HELP)]
WritableCacheDir = Annotated[Path | None, _cache_dir(writable_cache_dir)]


ID_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def id_ref(value: str) -> str:
    """A node or build id (or a prefix of one) as it goes into a URL path: letters, digits,
    `-` and `_` only, so no `/`, `..`, `?` or `%` can aim the request somewhere else."""
    if not ID_REF.fullmatch(value):
        raise OptionError(f"{value!r} is not an id: ids are letters, digits, '-' and '_'")
    return value


def id_argument(group: str, check: Callable[[str], str] | None = id_ref) -> Any:
    """The id argument of `livestrap GROUP show|delete|...`: a whole id or a unique prefix,
    checked by `id_ref` where it goes into a URL path."""
    noun = group.removesuffix("s").capitalize()
    help = f"{noun} id or a unique prefix of one (see `livestrap {group} list`)."
    return typer.Argument(help=help, callback=check)


def warn_deprecated(old: str, new: str) -> None:
    """Scripts keep working; their authors learn the new spelling on stderr."""
    typer.echo(f"warning: {old} is deprecated; use {new}", err=True)


def renamed(value: str, old_value: str | None, old: str, new: str, default: str = "") -> str:
    """The value of a renamed option: the old name still works, with a warning; both at
    once (the new one not at its `default`) is a usage error, not a silent pick."""
    if old_value is None:
        return value
    if value != default:
        raise OptionError(f"give {new} or its old name {old.split()[-1]}, not both")
    warn_deprecated(old, new)
    return old_value
