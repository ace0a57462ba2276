"""What `livestrap settings set FILE` uploads: the files and trees FILE names by relative
path (keys, scripts, extra dirs), into the master's `<data-dir>/spec/` where its API specs
take their paths from. Absolute paths are left as they are (paths on the master).

Each upload goes into a fresh folder named by the hash of what it carries,
`spec/sets/<hash>/<name>`, and the spec's paths are rewritten to it: an upload never
changes files that the stored settings or a queued build use, even when the master then
refuses the new spec. Same files, same folder: it is not uploaded again. Old folders stay
until deleted (`DELETE /api/v1/settings/files/sets/<hash>`).
"""

from __future__ import annotations

import contextlib
import hashlib
import posixpath
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO, Any

from livestrap.errors import SpecError

TAR_TYPE = "application/x-tar"
FILE_TYPE = "application/octet-stream"
CHUNK = 1024**2
SETS = "sets"  # spec/sets/<hash>/: one folder per distinct upload
HASH_CHARS = 16  # 64 bits of sha256: a folder name, not a security boundary
Put = Callable[[str, Any, str], object]  # (path in spec/, body, content type)
Present = Callable[[str], bool]  # is this path in spec/ already?


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
    """A plain tar of `folder`'s content; links are kept as links, never followed, and
    each file's and folder's mode is recorded (the master keeps it as
    livestrap.master.specfiles says: no setuid/setgid, files also no group/other write)."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in sorted(folder.rglob("*")):
            name = path.relative_to(folder).as_posix()
            tar.add(path, arcname=name, recursive=False, filter=_plain)


def _plain(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Only what the master keeps (name, kind, mode, bytes, link target): the same files
    make the same tar, so the same folder, whoever owns them and whenever they were saved."""
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _body(local: Path, stack: contextlib.ExitStack) -> tuple[IO[bytes], str]:
    """What to send for `local`: a tar of a folder (spooled to a temp file) or the file."""
    if local.is_dir():
        fh: IO[bytes] = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
        _tar(local, fh)
        return fh, TAR_TYPE
    return stack.enter_context(local.open("rb")), FILE_TYPE


def _chunks(fh: IO[bytes]) -> Iterator[bytes]:
    fh.seek(0)
    yield from iter(lambda: fh.read(CHUNK), b"")


def _digest(bodies: dict[str, tuple[IO[bytes], str]]) -> str:
    """sha256 over every name, its kind and its bytes: the upload's folder name."""
    sha = hashlib.sha256()
    for name, (fh, kind) in sorted(bodies.items()):
        sha.update(f"{name}\0{kind}\0".encode())
        size = 0
        for chunk in _chunks(fh):
            sha.update(chunk)
            size += len(chunk)
        sha.update(f"\0{size}\0".encode())
    return sha.hexdigest()[:HASH_CHARS]


def upload_spec_files(
    data: dict[str, Any], base: Path, put: Put, present: Present = lambda _: False
) -> list[tuple[str, bool]]:
    """Upload what `data` names by relative path (taken from `base`) into one folder
    `sets/<hash>` and rewrite those paths to it; returns (path in spec/, sent) for each,
    sent False when the master had it already. A path that is not beside the spec is sent
    as it is, clean: the master may have it from an earlier upload."""
    spots: list[tuple[dict[str, Any] | list[Any], str | int, str]] = []
    locals_: dict[str, Path] = {}
    for container, key in _fields(data):
        name = _relative(container[key])  # type: ignore[index]
        if name is None:
            continue
        container[key] = name  # type: ignore[index]
        local = base / PurePosixPath(name)
        if local.is_dir() or local.is_file():
            spots.append((container, key, name))
            locals_[name] = local
    if not locals_:
        return []
    with contextlib.ExitStack() as stack:
        bodies = {name: _body(local, stack) for name, local in locals_.items()}
        folder = f"{SETS}/{_digest(bodies)}"
        done = []
        for name, (fh, kind) in bodies.items():
            target = f"{folder}/{name}"
            sent = not present(target)
            if sent:
                put(target, _chunks(fh), kind)
            done.append((target, sent))
    for container, key, name in spots:
        container[key] = f"{folder}/{name}"  # type: ignore[index]
    return done
