"""What the build worker (root, in `livestrap builder`) makes for the API (another user
in the data dir's group) to read and manage: each file takes the owner and group of the
folder it is made in (logs/, images/), and the group may read it.

Not root (role "all", tests): a chown to another user is refused and skipped; the modes
still apply. Links are never followed: a tree is walked with lchown and no chmod of a link.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

LOG_MODE = 0o640
DIR_MODE = 0o750
GROUP_READ_FILE = 0o040
GROUP_READ_DIR = 0o050


def _owners(folder: Path) -> tuple[int, int]:
    info = folder.stat()
    return info.st_uid, info.st_gid


def _chown(path: Path, uid: int, gid: int) -> None:
    """Owner and group as given; a refused owner change still tries the group alone."""
    for owner in (uid, -1):
        with contextlib.suppress(PermissionError):
            os.chown(path, owner, gid, follow_symlinks=False)
            return


def shared_log(path: Path) -> Path:
    """Make (or take over) one build's log: 0640, owned like logs/. Made with O_NOFOLLOW:
    a link an unprivileged writer put there is refused, never appended to."""
    path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, LOG_MODE)
    try:
        os.fchmod(fd, LOG_MODE)
        uid, gid = _owners(path.parent)
        for owner in (uid, -1):
            with contextlib.suppress(PermissionError):
                os.fchown(fd, owner, gid)
                break
    finally:
        os.close(fd)
    return path


def share_tree(root: Path) -> None:
    """`root` and all in it owned like its parent (images/), readable by the group; the
    other bits (nginx may read images as others) are left as the store set them."""
    uid, gid = _owners(root.parent)
    paths = [root]
    for top, dirs, files in os.walk(root):  # never into a link to a folder
        paths += [Path(top, name) for name in (*dirs, *files)]
    for path in paths:
        info = path.lstat()
        _chown(path, uid, gid)
        if stat.S_ISLNK(info.st_mode):
            continue
        extra = GROUP_READ_DIR if stat.S_ISDIR(info.st_mode) else GROUP_READ_FILE
        mode = stat.S_IMODE(info.st_mode)
        if mode & extra != extra:
            path.chmod(mode | extra)
