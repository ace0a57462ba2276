"""build.overlay: the image's own folders keep their modes, and the source overlay is
walked by descriptor, so a link swapped in after the spec was checked is never followed."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from livestrap.builder import overlay
from livestrap.errors import BuildError

pytestmark = [pytest.mark.unit, pytest.mark.security]


def mode(path: Path) -> int:
    return path.lstat().st_mode & 0o7777


def image(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    for rel, m in (("etc", 0o755), ("root", 0o700), ("srv", 0o755)):
        (root / rel).mkdir(parents=True)
        (root / rel).chmod(m)
    (root / "etc/app.conf").write_text("image\n")
    (root / "etc/app.conf").chmod(0o644)
    os.chown(root / "etc", 0, 42)  # as /etc of an image may be, root:some-group
    return root


def test_the_images_folders_keep_their_modes_and_owners(tmp_path: Path) -> None:
    """An overlay made under umask 077 (etc/ 0700) or with a 0755 root/ changes neither
    /etc nor /root; folders it adds and files it provides get its modes and times."""
    root = image(tmp_path)
    extra = tmp_path / "overlay"
    (extra / "etc").mkdir(parents=True)
    (extra / "etc/app.conf").write_text("overlay\n")
    (extra / "etc/app.conf").chmod(0o640)
    (extra / "root").mkdir()
    (extra / "root/.profile").write_text("x\n")
    (extra / "srv/app/data").mkdir(parents=True)
    (extra / "srv/app/data").chmod(0o750)
    (extra / "srv/app").chmod(0o711)
    os.utime(extra / "srv/app", ns=(1_000_000_000, 1_000_000_000))
    (extra / "etc").chmod(0o700)
    (extra / "root").chmod(0o755)
    overlay.copy_extra_dirs(root, [extra])
    assert (mode(root / "etc"), mode(root / "root"), mode(root / "srv")) == (0o755, 0o700, 0o755)
    assert (root / "etc").stat().st_gid == 42
    assert (mode(root / "srv/app"), mode(root / "srv/app/data")) == (0o711, 0o750)  # made
    assert (root / "srv/app").stat().st_mtime_ns == 1_000_000_000
    assert (root / "etc/app.conf").read_text() == "overlay\n"
    assert mode(root / "etc/app.conf") == 0o640  # a file: the overlay's
    assert (root / "root/.profile").read_text() == "x\n"


def test_a_file_where_the_overlay_has_a_folder_becomes_its_folder(tmp_path: Path) -> None:
    root = image(tmp_path)
    (root / "srv/app").write_text("a file\n")
    extra = tmp_path / "overlay"
    (extra / "srv/app").mkdir(parents=True)
    (extra / "srv/app").chmod(0o700)
    overlay.copy_extra_dirs(root, [extra])
    assert (root / "srv/app").is_dir() and mode(root / "srv/app") == 0o700


class Swapping:
    """os.scandir that, once the overlay's root is listed, runs `swap` (an upload racing
    the build between the build-time check and the copy)."""

    def __init__(self, real: Callable[..., Any], swap: Callable[[], None]) -> None:
        self.real, self.swap, self.done = real, swap, False

    def __call__(self, target: Any) -> Any:
        entries = list(self.real(target))
        if not self.done:
            self.done = True
            self.swap()
        return Listed(entries)


class Listed:
    def __init__(self, entries: list[os.DirEntry[str]]) -> None:
        self.entries = entries

    def __enter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)

    def __exit__(self, *exc: object) -> None:
        return None

    def __iter__(self) -> Iterator[os.DirEntry[str]]:
        return iter(self.entries)


@pytest.mark.parametrize("swapped", ["etc", "secret.txt"])
def test_a_link_swapped_in_during_the_copy_is_not_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, swapped: str
) -> None:
    """The overlay's folder (or file) is replaced by a link to the host after its listing:
    the host's files never reach the image, and the build stops."""
    host = tmp_path / "host"
    (host / "etc").mkdir(parents=True)
    (host / "etc/shadow").write_text("HOST SECRET\n")
    (host / "secret.txt").write_text("HOST SECRET\n")
    root = image(tmp_path)
    extra = tmp_path / "overlay"
    (extra / "etc").mkdir(parents=True)
    (extra / "etc/motd").write_text("hi\n")
    (extra / "secret.txt").write_text("mine\n")

    def swap() -> None:
        victim = extra / swapped
        shutil.rmtree(victim) if victim.is_dir() else victim.unlink()
        victim.symlink_to(host / swapped)

    monkeypatch.setattr(os, "scandir", Swapping(os.scandir, swap))
    with pytest.raises(BuildError, match=rf"{swapped} is a symbolic link now"):
        overlay.copy_extra_dirs(root, [extra])
    monkeypatch.undo()
    leaked = [p for p in root.rglob("*") if p.is_file() and b"HOST" in p.read_bytes()]
    assert leaked == []


def test_the_overlay_path_itself_may_not_be_or_pass_a_link(tmp_path: Path) -> None:
    root = image(tmp_path)
    (tmp_path / "real/overlay/etc").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real/overlay")
    (tmp_path / "via").symlink_to(tmp_path / "real")
    for src in (tmp_path / "link", tmp_path / "via/overlay"):
        with pytest.raises(BuildError, match="is a symbolic link now"):
            overlay.copy_extra_dirs(root, [src])
    overlay.copy_extra_dirs(root, [tmp_path / "real/overlay"])  # the resolved path is fine


def test_a_fifo_is_refused_not_waited_for(tmp_path: Path) -> None:
    root = image(tmp_path)
    (tmp_path / "overlay").mkdir()
    os.mkfifo(tmp_path / "overlay/pipe")
    with pytest.raises(BuildError, match="pipe is a device, fifo or socket"):
        overlay.copy_extra_dirs(root, [tmp_path / "overlay"])
