"""A spec's extra dirs (overlay trees) copied over the image's root.

The source is walked by file descriptor: every component of the overlay's path, then each
folder and file in it, is opened with O_NOFOLLOW from its parent's descriptor, so a folder
or file swapped for a link after the spec was checked (an upload racing the build) is
refused, never followed to the host; the overlay's own links are copied as links. In the
image, a folder that is a link (usr-merged /lib) is followed as the image sees it, so
nothing is written through a link to the host. Folders the image has keep their mode,
owner and times (an overlay `etc/` made under umask 077 must not make /etc 0700); folders
the overlay adds, and every file it provides, get the overlay's mode and times.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from livestrap.errors import BuildError
from livestrap.fdpath import descend

MAX_LINK_HOPS = 40  # as the kernel's own limit on a path's symlinks
SRC_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
SRC_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a fifo: no wait
DST_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
CHUNK = 1024**2
XATTR_SKIP = frozenset({errno.ENOTSUP, errno.ENODATA, errno.EINVAL, errno.EPERM, errno.EACCES})


def copy_extra_dirs(rootfs: Path, dirs: list[Path]) -> None:
    """Copy each extra dir over the image's root (see the module doc)."""
    for src in dirs:
        fd = open_source(src)
        try:
            _merge(fd, src, "", rootfs, rootfs)
        finally:
            os.close(fd)


def _refused(src: Path, where: str, err: OSError) -> BuildError:
    why = {
        errno.ELOOP: "is a symbolic link now",
        errno.ENOTDIR: "is not a folder now",
        errno.ENOENT: "is gone",
    }.get(err.errno or 0, err.strerror or "cannot be opened")
    return BuildError(
        "customize", f"extra dir {src}: {where or '.'} {why}; it changed since the spec was "
        "checked (links are copied as links, never followed), so nothing more is copied"
    )  # fmt: skip


def _odd(src: Path, where: str, what: str) -> BuildError:
    return BuildError("customize", f"extra dir {src}: {where} {what}")


def _open_in(parent: int, name: str, flags: int, src: Path, where: str) -> int:
    try:
        return os.open(name, flags, dir_fd=parent)
    except OSError as err:
        failed = err
    try:  # O_DIRECTORY on a link says ENOTDIR: say what it is
        if stat.S_ISLNK(os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode):
            failed = OSError(errno.ELOOP, "")
    except OSError:
        pass
    raise _refused(src, where, failed)


def open_source(src: Path) -> int:
    """A folder fd of `src`, each component opened with O_NOFOLLOW: a checked spec's paths
    are resolved, so a link on the way means that it changed since."""
    parts = src.parts[1:] if src.is_absolute() else src.parts
    walked = [Path("/" if src.is_absolute() else ".")]

    def open_next(parent: int, part: str) -> int:
        walked.append(walked[-1] / part)
        return _open_in(parent, part, SRC_DIR, src, str(walked[-1]))

    return descend(os.open(walked[0], SRC_DIR), parts, open_next)


def in_image(rootfs: Path, path: Path) -> Path:
    """`path` (under rootfs) with the image's links resolved as inside the image:
    absolute targets start at rootfs, `..` stops there."""
    todo = list(path.relative_to(rootfs).parts)
    cur, hops = rootfs, 0
    while todo:
        part = todo.pop(0)
        if part == "..":
            cur = cur.parent if cur != rootfs else rootfs
        elif part not in ("", ".", "/"):
            nxt = cur / part
            if not nxt.is_symlink():
                cur = nxt
                continue
            hops += 1
            if hops > MAX_LINK_HOPS:
                raise BuildError("customize", f"too many links in the image at {path}")
            target = os.readlink(nxt)
            cur = rootfs if target.startswith("/") else cur
            todo = [*Path(target).parts, *todo]
    return cur


def _merge(src_fd: int, src: Path, rel: str, dst: Path, rootfs: Path) -> None:
    """The entries of the source folder `src_fd` into the image folder `dst` (a real
    folder, links resolved); `rel` is where that is in the overlay, for messages."""
    with os.scandir(src_fd) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        where = f"{rel}/{entry.name}" if rel else entry.name
        if entry.is_dir(follow_symlinks=False):
            _merge_dir(src_fd, entry.name, src, where, dst, rootfs)
            continue
        target = dst / entry.name
        if target.is_dir() and not target.is_symlink():
            raise _odd(src, where, "is a file, the image has a folder")
        if entry.is_symlink():
            try:
                link = os.readlink(entry.name, dir_fd=src_fd)
            except OSError as err:
                raise _refused(src, where, err) from None
            target.unlink(missing_ok=True)  # never written through: replaced
            os.symlink(link, target)
        elif entry.is_file(follow_symlinks=False):
            _copy_file(src_fd, entry.name, src, where, target)
        else:
            raise _odd(src, where, "is a device, fifo or socket")


def _merge_dir(parent: int, name: str, src: Path, where: str, dst: Path, rootfs: Path) -> None:
    """One folder of the overlay; it gets the overlay's mode and times only if made here."""
    fd = _open_in(parent, name, SRC_DIR, src, where)
    try:
        inner = in_image(rootfs, dst / name)
        made = not inner.is_dir()
        if made:
            if inner.exists() or inner.is_symlink():
                inner.unlink()  # a file where the overlay has a folder
            inner.mkdir(parents=True)  # a dangling link's target: in the image
        _merge(fd, src, where, inner, rootfs)
        if made:  # after its content (a 0500 folder), as shutil.copystat did
            out = os.open(inner, SRC_DIR)
            try:
                _copy_meta(fd, out)
            finally:
                os.close(out)
    finally:
        os.close(fd)


def _copy_file(parent: int, name: str, src: Path, where: str, target: Path) -> None:
    fd = _open_in(parent, name, SRC_FILE, src, where)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _odd(src, where, "is not a regular file now")
        target.unlink(missing_ok=True)  # never written through: replaced
        out = os.open(target, DST_FILE, 0o600)
        try:
            while chunk := os.read(fd, CHUNK):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(out, view) :]
            _copy_meta(fd, out)
        finally:
            os.close(out)
    finally:
        os.close(fd)


def _copy_meta(src_fd: int, dst_fd: int) -> None:
    """Extended attributes, mode and times of `src_fd` onto `dst_fd` (not the owner)."""
    info = os.fstat(src_fd)
    try:
        names = os.listxattr(src_fd)
    except OSError as err:
        if err.errno not in XATTR_SKIP:
            raise
        names = []
    for key in names:
        try:
            os.setxattr(dst_fd, key, os.getxattr(src_fd, key))
        except OSError as err:
            if err.errno not in XATTR_SKIP:
                raise
    os.fchmod(dst_fd, stat.S_IMODE(info.st_mode))
    os.utime(dst_fd, ns=(info.st_atime_ns, info.st_mtime_ns))
