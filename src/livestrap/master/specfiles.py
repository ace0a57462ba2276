"""Files in `<data-dir>/spec`, the one folder API specs may name: written, listed, removed.

Uploads are admin-only, but a tar is still treated as hostile: only relative names without
`..`, regular files, directories and symlinks that stay inside the tree; no hard links, no
devices, bounded size and member count; nothing is written through a link. A tree is
unpacked into a staging folder next to spec/ and swapped into place, so a refused upload
leaves spec/ as it was.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
import stat
import tarfile
from pathlib import Path
from typing import IO, Literal, cast

from livestrap.errors import ArchiveError, ConflictError, NotFoundError, SpecError
from livestrap.store import tmpdirs
from livestrap.store.targuard import TarGuard

MAX_FILE_BYTES = 64 * 1024**2  # one uploaded file (a key, a script)
MAX_TREE_BYTES = 256 * 1024**2  # one uploaded tar, headers included (plain tar: no bombs)
MAX_TREE_MEMBERS = 10_000
MAX_NAME_CHARS = 1024
# A path in the URL: plain names only, so it can neither climb out nor hide a query.
PART_RE = re.compile(r"[A-Za-z0-9._+@=,~-]{1,255}")
MAX_DEPTH = 32
CHUNK = 1024**2

Kind = Literal["file", "dir", "symlink"]


class SpecFileError(SpecError):
    """An upload or a path into spec/ was refused (422)."""


def spec_path(spec_dir: Path, rel: str) -> Path:
    """`spec_dir/rel` for a URL path of plain names, with no existing link on the way."""
    parts = rel.strip("/").split("/") if rel.strip("/") else []
    plain = all(PART_RE.fullmatch(p) and p not in (".", "..") for p in parts)
    if not parts or len(parts) > MAX_DEPTH or not plain:
        raise SpecFileError(
            f"{rel!r} is not a path in the spec folder: names of letters, digits and ._+@=,~- "
            "separated by '/', none of them '.' or '..'"
        )
    path = spec_dir
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise SpecFileError(f"{rel!r} goes through a symbolic link ({part})")
    return path


def new_staging(spec_dir: Path) -> Path:
    """A fresh private folder in <data-dir>/tmp (same file system as spec/: a rename moves
    it in; named by store.tmpdirs, so a killed upload's leftovers are cleaned)."""
    return tmpdirs.make_dir(spec_dir.parent / "tmp", "upload")


def _member_name(name: str) -> str | None:
    """The member's relative name, None for the tree's root itself; refused when unsafe."""
    if "\0" in name or len(name) > MAX_NAME_CHARS or name.startswith("/"):
        raise SpecFileError(f"tar member {name[:80]!r}: absolute or overlong name")
    norm = posixpath.normpath(name)
    if norm == ".":
        return None
    parts = norm.split("/")
    if ".." in parts or len(parts) > MAX_DEPTH:
        raise SpecFileError(f"tar member {name[:80]!r} climbs out of the tree or is too deep")
    return norm


def _parent(root: Path, rel: str) -> Path:
    """Make the member's parent dirs under `root`, refusing to pass through a link."""
    parent = root
    for part in rel.split("/")[:-1]:
        parent = parent / part
        if parent.is_symlink() or (parent.exists() and not parent.is_dir()):
            raise SpecFileError(f"tar member {rel!r} goes through a link or a file ({part})")
        parent.mkdir(mode=0o755, exist_ok=True)
    return root / rel


def _link_ok(rel: str, target: str) -> bool:
    if not target or target.startswith("/") or "\0" in target:
        return False
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return joined != ".." and not joined.startswith("../")


def unpack_tree(data: IO[bytes], root: Path) -> int:
    """Unpack a plain tar into `root` (made, or empty); returns the number of members taken."""
    root.mkdir(mode=0o755, exist_ok=True)
    count = 0
    try:
        # stream mode behind TarGuard: oversized pax/GNU headers are refused before
        # tarfile parses them (CVE-2024-6232)
        with tarfile.open(
            fileobj=cast(IO[bytes], TarGuard(data, MAX_TREE_BYTES)), mode="r|"
        ) as tar:
            for member in tar:
                count += 1
                if count > MAX_TREE_MEMBERS:
                    raise SpecFileError(f"tar has more than {MAX_TREE_MEMBERS} members")
                rel = _member_name(member.name)
                if rel is None:
                    continue
                dest = _parent(root, rel)
                if dest.is_symlink() or (dest.exists() and not (member.isdir() and dest.is_dir())):
                    raise SpecFileError(f"tar member {rel!r} appears twice")
                if member.isdir():
                    dest.mkdir(mode=0o755, exist_ok=True)
                elif member.isreg():
                    src = tar.extractfile(member)
                    assert src is not None
                    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 member.mode & 0o755 | 0o600)  # fmt: skip
                    with os.fdopen(fd, "wb") as out:
                        shutil.copyfileobj(src, out, CHUNK)
                elif member.issym():
                    if not _link_ok(rel, member.linkname):
                        raise SpecFileError(
                            f"tar member {rel!r} links to {member.linkname[:80]!r}, outside the "
                            "tree (only relative links that stay inside it are taken)"
                        )
                    os.symlink(member.linkname, dest)
                else:
                    raise SpecFileError(
                        f"tar member {rel!r} is a hard link, device or fifo; only files, "
                        "directories and symbolic links are taken"
                    )
    except (tarfile.TarError, EOFError, ArchiveError) as err:
        raise SpecFileError(f"not a readable plain tar: {err}") from None
    return count


def place(staged: Path, dest: Path) -> None:
    """Move `staged` to `dest`, replacing what was there (file or tree)."""
    if dest.is_dir() and not dest.is_symlink() and not staged.is_dir():
        raise ConflictError(f"{dest.name} is a directory; delete it first to put a file there")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConflictError(f"a file is in the way of {dest.name}'s folder") from None
    if dest.is_dir() and not dest.is_symlink():
        old = staged.parent / "replaced"
        dest.rename(old)  # removed with the staging folder
    elif staged.is_dir() and (dest.is_symlink() or dest.exists()):
        dest.unlink()
    os.replace(staged, dest)


def listing(spec_dir: Path) -> list[dict[str, object]]:
    """Everything in spec/, links not followed: path, type and size."""
    out: list[dict[str, object]] = []
    for top, dirs, files in os.walk(spec_dir):
        for name in sorted([*dirs, *files]):
            path = Path(top) / name
            info = path.lstat()
            kind: Kind = (
                "symlink"
                if stat.S_ISLNK(info.st_mode)
                else "dir"
                if stat.S_ISDIR(info.st_mode)
                else "file"
            )
            rel = path.relative_to(spec_dir).as_posix()
            out.append({"path": rel, "type": kind, "size": info.st_size if kind == "file" else 0})
        dirs.sort()
    return sorted(out, key=lambda e: str(e["path"]))


def remove(path: Path) -> None:
    """Delete a file, link or whole tree (links are removed, never followed)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        raise NotFoundError(f"no {path.name} in the spec folder")


def regular_file(path: Path) -> Path:
    """`path` when it is a regular file (not a link, not a folder), else 404."""
    if path.is_symlink() or not path.is_file():
        raise NotFoundError(f"no file {path.name} in the spec folder")
    return path
