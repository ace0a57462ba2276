"""Token files: made 0600 with 32 random bytes; a token file others can read, a symlink,
something not a file, or a short token is refused with the file's name and the fix."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from livestrap.errors import StartupError
from livestrap.master.tokens import MIN_TOKEN_BYTES, ensure_token, read_token

pytestmark = [pytest.mark.unit, pytest.mark.security]

GOOD = "a" * MIN_TOKEN_BYTES


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_made_private_and_long(tmp_path: Path) -> None:
    path = tmp_path / "data" / "admin.token"
    token, made = ensure_token(path)
    assert made and len(token) >= 43  # 32 random bytes, URL-safe base64
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n"
    assert ensure_token(path) == (token, False)


def test_blank_file_gets_a_new_token(tmp_path: Path) -> None:
    path = write(tmp_path / "admin.token", "\n")
    token, made = ensure_token(path)
    assert made and path.read_text() == token + "\n"


def test_a_token_of_32_bytes_is_taken(tmp_path: Path) -> None:
    path = write(tmp_path / "admin.token", GOOD + "\n")
    assert ensure_token(path) == (GOOD, False)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o620, 0o602, 0o660])
def test_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path / "admin.token", GOOD, mode)
    with pytest.raises(StartupError) as err:
        ensure_token(path)
    assert f"token file {path} has mode {mode:04o}" in str(err.value)
    assert f"run: chmod 600 {path}" in str(err.value)
    assert GOOD not in str(err.value)
    assert path.read_text() == GOOD  # left as it was


def test_symlink_is_refused(tmp_path: Path) -> None:
    target = write(tmp_path / "elsewhere", GOOD)  # even to a private file
    link = tmp_path / "discovery.token"
    link.symlink_to(target)
    with pytest.raises(StartupError, match=f"token file {link} is a symlink"):
        ensure_token(link)


def test_dangling_symlink_is_refused_not_followed(tmp_path: Path) -> None:
    link = tmp_path / "admin.token"
    link.symlink_to(tmp_path / "made-through-the-link")
    with pytest.raises(StartupError, match="is a symlink"):
        ensure_token(link)
    assert not (tmp_path / "made-through-the-link").exists()


def test_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "admin.token"
    os.mkfifo(fifo, 0o600)  # a read would block forever
    with pytest.raises(StartupError, match="is not a regular file"):
        read_token(fifo)
    folder = tmp_path / "discovery.token"
    folder.mkdir(mode=0o700)
    with pytest.raises(StartupError, match="is not a regular file"):
        read_token(folder)


@pytest.mark.parametrize("token", ["rotated-token", "x", "a" * (MIN_TOKEN_BYTES - 1)])
def test_short_token_is_refused(tmp_path: Path, token: str) -> None:
    path = write(tmp_path / "admin.token", token + "\n")
    with pytest.raises(StartupError) as err:
        ensure_token(path)
    assert f"token in {path} is {len(token)} bytes" in str(err.value)
    assert "rotated" not in str(err.value)  # the token itself is never shown


def test_huge_file_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "admin.token", "a" * 100_000)
    with pytest.raises(StartupError, match="a token is one line"):
        ensure_token(path)
