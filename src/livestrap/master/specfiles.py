"""Files in `<data-dir>/spec`, the one folder API specs may name: written, listed, removed.

Uploads are admin-only, but a tar is still treated as hostile: only relative names without
`..`, regular files, directories and symlinks (any target: an overlay's
`etc/localtime -> /usr/share/zoneinfo/UTC` is normal); no hard links, no devices, bounded
size and member count. The master never follows a link in spec/: nothing is written
through one (every component is opened with O_NOFOLLOW), and spec paths are resolved and
confined before use (livestrap.specpaths). Folders keep the tar's modes minus
setuid/setgid; files keep the owner's execute bits and other's read/execute, never
setuid, setgid, sticky or group/other write, always owner read/write (`file_mode`). A tree
is unpacked into a staging folder next to spec/ and swapped into place (one upload at a
time, `place`), so a refused upload leaves spec/ as it was.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import shutil
import stat
import tarfile
import threading
from pathlib import Path
from typing import IO, Literal, cast

from livestrap.datadir import DataDir
from livestrap.errors import ArchiveError, ConflictError, NotFoundError, SpecError
from livestrap.fdpath import descend
from livestrap.master.errors import DISK_FULL_ERRNOS
from livestrap.store import tmpdirs
from livestrap.store.targuard import TarGuard

MAX_FILE_BYTES = 64 * 1024**2  # one uploaded file (a key, a script)
MAX_TREE_BYTES = 256 * 1024**2  # one uploaded tar, headers included (plain tar: no bombs)
MAX_TREE_MEMBERS = 10_000
MAX_NAME_CHARS = 1024  # a member's name, a link's target, a URL path
NAME_MAX_BYTES = 255  # one name in a path, as the file system takes it
MAX_LIST_ENTRIES = 10_000  # one listing (GET /settings/files); ?prefix= asks for less
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
    if not parts or len(parts) > MAX_DEPTH or len(rel) > MAX_NAME_CHARS or not plain:
        raise SpecFileError(
            f"{rel[:80]!r} is not a path in the spec folder: names of letters, digits and "
            f"._+@=,~- separated by '/', none of them '.' or '..', at most {MAX_NAME_CHARS} "
            "characters"
        )
    path = spec_dir
    for part in parts:
        path = path / part
        if path.is_symlink():
            raise SpecFileError(f"{rel!r} goes through a symbolic link ({part})")
    return path


def new_staging(spec_dir: Path) -> Path:
    """A fresh private folder in <data-dir>/tmp (same file system as spec/, DataDir.spec: a
    rename moves it in; named by store.tmpdirs, so a killed upload's leftovers are cleaned)."""
    return tmpdirs.make_dir(DataDir(spec_dir.parent).tmp, "upload")


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
    if any(len(os.fsencode(p)) > NAME_MAX_BYTES for p in parts):
        raise SpecFileError(f"tar member {name[:80]!r}: a name longer than {NAME_MAX_BYTES} bytes")
    return norm


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
ROOT_MODE = 0o755  # the tree's own folder (copied onto the image's / by the build)
IMPLIED_MODE = 0o755  # a folder the tar names only as a parent
WORK_MODE = 0o700  # every folder while the tree is unpacked: the master writes into it


def file_mode(mode: int) -> int:
    """A member file's mode: no setuid/setgid/sticky, no group/other write, owner rw."""
    return mode & 0o755 | 0o600


def dir_mode(mode: int) -> int:
    """A member folder's mode as the tar says (0700 .ssh stays 0700), minus setuid/setgid."""
    return mode & 0o1777


def _open_dir(parent_fd: int, name: str, rel: str, made: dict[str, int], path: str) -> int:
    """`name` in `parent_fd` as a folder fd, made when missing; never through a link."""
    try:
        os.mkdir(name, WORK_MODE, dir_fd=parent_fd)
        made.setdefault(path, IMPLIED_MODE)
    except FileExistsError:
        pass
    try:
        return os.open(name, DIR_FLAGS, dir_fd=parent_fd)
    except OSError:  # ELOOP: a link, ENOTDIR: a file
        raise SpecFileError(f"tar member {rel!r} goes through a link or a file ({name})") from None


def _walk_to_parent(root_fd: int, rel: str, made: dict[str, int]) -> int:
    """An fd of the member's parent folder, each component opened with O_NOFOLLOW."""
    parts = rel.split("/")[:-1]
    walked: list[str] = []

    def open_next(parent: int, part: str) -> int:
        walked.append(part)
        return _open_dir(parent, part, rel, made, "/".join(walked))

    return descend(os.dup(root_fd), parts, open_next)


def _twice(rel: str) -> SpecFileError:
    return SpecFileError(f"tar member {rel!r} appears twice")


def _extract(tar: tarfile.TarFile, member: tarfile.TarInfo, parent: int, rel: str,
             made: dict[str, int]) -> None:  # fmt: skip
    """One member into its parent folder `parent` (an fd): nothing written through a link."""
    leaf = rel.rsplit("/", 1)[-1]
    try:
        if member.isdir():
            try:
                os.mkdir(leaf, WORK_MODE, dir_fd=parent)
            except FileExistsError:
                if not stat.S_ISDIR(os.stat(leaf, dir_fd=parent, follow_symlinks=False).st_mode):
                    raise _twice(rel) from None
            made[rel] = dir_mode(member.mode)
        elif member.isreg():
            src = tar.extractfile(member)
            assert src is not None
            fd = os.open(leaf, FILE_FLAGS, 0o600, dir_fd=parent)
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
                os.fchmod(out.fileno(), file_mode(member.mode))  # exact: no umask
        elif member.issym():
            if not _link_ok(member.linkname):
                raise SpecFileError(f"tar member {rel!r}: empty or overlong link target")
            os.symlink(member.linkname, leaf, dir_fd=parent)
        else:
            raise SpecFileError(
                f"tar member {rel!r} is a hard link, device or fifo; only files, "
                "directories and symbolic links are taken"
            )
    except FileExistsError:
        raise _twice(rel) from None


def _link_ok(target: str) -> bool:
    """Any target, absolute ones too: the master never follows a link in spec/ (it writes
    nothing through one, and the build copies links as links); the image resolves them."""
    return bool(target) and "\0" not in target and len(target) <= MAX_NAME_CHARS


def _set_modes(root_fd: int, made: dict[str, int]) -> None:
    """The folders' final modes, deepest first (a 0500 folder is made read-only last)."""
    for rel in sorted(made, key=lambda r: r.count("/"), reverse=True):
        parts = rel.split("/")
        fd = os.dup(root_fd)
        try:
            for part in parts:
                nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = nxt
            os.fchmod(fd, made[rel])
        finally:
            os.close(fd)


def unpack_tree(data: IO[bytes], root: Path) -> int:
    """Unpack a plain tar into `root` (made, or empty); returns the number of members taken.
    Every path component is opened with O_NOFOLLOW from a folder fd, so no member is
    written through a link, whatever the links in the tree point at; folders get the tar's
    modes once everything is in."""
    root.mkdir(mode=ROOT_MODE, exist_ok=True)
    root.chmod(ROOT_MODE)
    count = 0
    made: dict[str, int] = {}  # folder -> its final mode
    root_fd = os.open(root, DIR_FLAGS)
    name = ""  # the member being taken, for messages
    try:
        # stream mode behind TarGuard: oversized pax/GNU headers are refused before
        # tarfile parses them (CVE-2024-6232)
        with tarfile.open(
            fileobj=cast(IO[bytes], TarGuard(data, MAX_TREE_BYTES)), mode="r|"
        ) as tar:
            for member in tar:
                name = member.name
                count += 1
                if count > MAX_TREE_MEMBERS:
                    raise SpecFileError(f"tar has more than {MAX_TREE_MEMBERS} members")
                rel = _member_name(member.name)
                if rel is None:
                    continue
                parent = _walk_to_parent(root_fd, rel, made)
                try:
                    _extract(tar, member, parent, rel, made)
                finally:
                    os.close(parent)
        name = ""
        _set_modes(root_fd, made)
    except (tarfile.TarError, EOFError, ArchiveError) as err:
        raise SpecFileError(f"not a readable plain tar: {err}") from None
    except OSError as err:  # a full disk stays itself (507); the rest is the tree's fault
        if err.errno in DISK_FULL_ERRNOS:
            raise
        what = f"tar member {name[:80]!r}" if name else "the tree"
        raise SpecFileError(f"{what} cannot be unpacked: {err.strerror or err}") from None
    finally:
        os.close(root_fd)
    return count


PLACE_LOCK = threading.Lock()  # one master process: its uploads are placed one by one
RACED = frozenset({errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR, errno.ENOENT})


def place(staged: Path, dest: Path) -> None:
    """Move `staged` to `dest`, replacing what was there (file or tree). Uploads are
    placed one at a time; one that another process changed meanwhile is tried again, then
    refused as a conflict (409)."""
    with PLACE_LOCK:
        for attempt in range(2):
            try:
                _place(staged, dest, staged.parent / f"replaced-{attempt}")
                return
            except OSError as err:
                if err.errno not in RACED:
                    raise
    raise ConflictError(f"{dest.name} was changed by another upload meanwhile; try again")


def _place(staged: Path, dest: Path, old: Path) -> None:
    if dest.is_dir() and not dest.is_symlink() and not staged.is_dir():
        raise ConflictError(f"{dest.name} is a directory; delete it first to put a file there")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConflictError(f"a file is in the way of {dest.name}'s folder") from None
    if dest.is_dir() and not dest.is_symlink():
        dest.rename(old)  # removed with the staging folder
    elif staged.is_dir() and (dest.is_symlink() or dest.exists()):
        dest.unlink()
    os.replace(staged, dest)


def _entry(spec_dir: Path, path: Path) -> dict[str, object]:
    info = path.lstat()
    kind: Kind = (
        "symlink" if stat.S_ISLNK(info.st_mode) else "dir" if stat.S_ISDIR(info.st_mode) else "file"
    )
    rel = path.relative_to(spec_dir).as_posix()
    return {"path": rel, "type": kind, "size": info.st_size if kind == "file" else 0}


def listing(
    spec_dir: Path, top: Path | None = None, limit: int | None = None
) -> tuple[list[dict[str, object]], bool]:
    """What is in spec/ (or `top` and what is in it, `top` from spec_path), links not
    followed: path, type and size, sorted by path; and whether it was cut at `limit`
    (default MAX_LIST_ENTRIES)."""
    limit = MAX_LIST_ENTRIES if limit is None else limit
    out: list[dict[str, object]] = []
    if top is not None:
        if not (top.is_symlink() or top.exists()):
            return [], False
        out.append(_entry(spec_dir, top))
        if top.is_symlink() or not top.is_dir():
            return out, False
    cut = False
    for here, dirs, files in os.walk(top or spec_dir):
        dirs.sort()
        for name in sorted([*dirs, *files]):
            if len(out) >= limit:
                cut = True
                break
            out.append(_entry(spec_dir, Path(here) / name))
        if cut:
            break
    return sorted(out, key=lambda e: str(e["path"])), cut


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
