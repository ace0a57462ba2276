"""What `livestrap settings set FILE` uploads: the files and trees FILE names by relative
path (keys, scripts, extra dirs), into the master's `<data-dir>/spec/` where its API specs
take their paths from. Absolute paths are left as they are (paths on the master)."""

from __future__ import annotations

import posixpath
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from livestrap.errors import SpecError

TAR_TYPE = "application/x-tar"
CHUNK = 1024**2
Put = Callable[[str, Any, str], object]  # (path in spec/, body, content type)


def _relative(value: Any) -> str | None:
    """The spec path as a clean relative name, None when it is not one to upload."""
    if not isinstance(value, str) or value.startswith(("/", "~")):
        return None
    norm = posixpath.normpath(value)
    if norm == "." or norm == ".." or norm.startswith("../"):
        raise SpecError(
            f"{value!r}: only files inside the spec's folder can be uploaded to the master; "
            "move it there (or name it by its absolute path on the master)"
        )
    return norm


def _fields(data: dict[str, Any]) -> list[tuple[dict[str, Any] | list[Any], str | int]]:
    """Where a spec holds paths: (container, key) pairs, so they can be rewritten."""
    spots: list[tuple[dict[str, Any] | list[Any], str | int]] = []
    if "mirror_key" in data:
        spots.append((data, "mirror_key"))
    for name in ("extra_dirs", "scripts"):
        items = data.get(name)
        if isinstance(items, list):
            spots += [(items, i) for i in range(len(items))]
    repos = data.get("repos")
    for repo in repos if isinstance(repos, list) else []:
        if isinstance(repo, dict) and "key" in repo:
            spots.append((repo, "key"))
    return spots


def _tar(folder: Path, out: Any) -> None:
    """A plain tar of `folder`'s content; links are kept as links, never followed."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            tar.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)


def upload_spec_files(data: dict[str, Any], base: Path, put: Put) -> list[str]:
    """Upload what `data` names by relative path (taken from `base`) and rewrite those
    paths to their clean form; returns the names uploaded. A path that is not beside
    the spec is sent as it is: the master may have it from an earlier upload."""
    done: list[str] = []
    for container, key in _fields(data):
        value = container[key]  # type: ignore[index]
        name = _relative(value)
        if name is None:
            continue
        container[key] = name  # type: ignore[index]
        if name in done:
            continue
        local = base / PurePosixPath(name)
        if local.is_dir():
            with tempfile.TemporaryFile() as fh:
                _tar(local, fh)
                fh.seek(0)
                put(name, iter(lambda: fh.read(CHUNK), b""), TAR_TYPE)
        elif local.is_file():
            put(name, local.read_bytes(), "application/octet-stream")
        else:
            continue  # maybe uploaded before: the master says if it is not in spec/ either
        done.append(name)
    return done
