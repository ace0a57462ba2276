"""Bearer tokens kept in files of the data dir (0600), made on first start.

A token file that other local users can read, or a symlink (which could point anywhere, and
be swapped), is refused: the master will not start on a token others may know. A short
token (hand-written, say) is refused too: 32 bytes is what the master makes.
"""

from __future__ import annotations

import contextlib
import errno
import hmac
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

from livestrap.errors import StartupError

MIN_TOKEN_BYTES = 32
TOKEN_FILE_MODE = 0o600
MAX_TOKEN_FILE_BYTES = 4096  # a token file is one line; anything bigger is not one


def read_token(path: Path) -> str | None:
    """The token in `path`; None if the file is absent or blank. StartupError if the file
    is a symlink, not a regular file, open to group or others, or holds a short token."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise StartupError(
                f"token file {path} is a symlink; replace it with a regular file "
                f"(rm {path}; a new token is made on start)"
            ) from None
        raise StartupError(f"cannot read token file {path}: {err.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StartupError(f"token file {path} is not a regular file; remove it")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise StartupError(
                f"token file {path} has mode {mode:04o}: other users can read or change it; "
                f"run: chmod 600 {path} (and make a new token if it may have leaked)"
            )
        raw = os.read(fd, MAX_TOKEN_FILE_BYTES + 1)
    finally:
        os.close(fd)
    token = raw.decode("utf-8", errors="replace").strip()
    if not token:
        return None
    if len(raw) > MAX_TOKEN_FILE_BYTES or len(token.encode()) < MIN_TOKEN_BYTES:
        raise StartupError(
            f"token in {path} is {len(token.encode())} bytes; a token is one line of "
            f"{MIN_TOKEN_BYTES} to {MAX_TOKEN_FILE_BYTES} bytes: remove the file to have a new "
            "one made on start, or write one, e.g. "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    return token


@contextlib.contextmanager
def _written_aside(path: Path, token: str, owner: os.stat_result | None = None) -> Iterator[Path]:
    """`token` in a new 0600 file beside `path` (synced; chowned to `owner`'s user and group
    when root), for the caller to link or rename into place; removed if it is left there."""
    aside = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, TOKEN_FILE_MODE)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), TOKEN_FILE_MODE)
            if owner is not None and os.geteuid() == 0:
                os.fchown(fh.fileno(), owner.st_uid, owner.st_gid)
            fh.write(token + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        yield aside
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(aside)


def ensure_token(path: Path) -> tuple[str, bool]:
    """Return the token in `path`, making it (mode 0600) if absent; bool: newly made.
    Masters sharing a data dir may start at once: the token is written aside and linked
    into place, which never replaces a file, so the first one made is everyone's."""
    token = read_token(path)
    if token is not None:
        return token, False
    path.parent.mkdir(mode=0o750, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(MIN_TOKEN_BYTES)  # 43 characters
    with _written_aside(path, token) as aside:
        try:
            os.link(aside, path)
        except FileExistsError:
            existing = read_token(path)  # another master made it first
            if existing is not None:
                return existing, False
            os.replace(aside, path)  # a blank file: replaced, as before
    return token, True


def token_matches(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def replace_token(path: Path) -> None:
    """Put a new token in `path` (0600, the old file's owner and group, so a master running
    as its own user still reads it): written aside and renamed over the old one, so a reader
    sees the old token or the new, never half of one. Running masters take it
    (master.token_watch). An old file open to others is replaced too (that is the leak the
    new token is for); a symlink is refused. The token itself is never returned."""
    try:
        old = os.lstat(path)
    except FileNotFoundError:
        old = os.stat(path.parent)
    else:
        if not stat.S_ISREG(old.st_mode):
            raise StartupError(f"token file {path} is a symlink or not a regular file; "
                               "remove it first")  # fmt: skip
    with _written_aside(path, secrets.token_urlsafe(MIN_TOKEN_BYTES), old) as aside:
        os.replace(aside, path)
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(folder)  # the rename too survives a crash
    finally:
        os.close(folder)
