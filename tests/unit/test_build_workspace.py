"""build.workspace: mounts below a tree, the build lock, and refusing to delete mounted trees."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

import pytest

from livestrap.builder import workspace
from livestrap.errors import BuildError

pytestmark = pytest.mark.unit


def write_mounts(tmp_path: Path, build: str) -> Path:
    """A /proc/self/mounts lookalike: spaces in mount points are written as \\040."""
    b = build.replace(" ", "\\040")
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/sda1 / ext4 rw,relatime 0 0\n"
        "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0\n"
        f"tmpfs {b} tmpfs rw 0 0\n"
        f"proc {b}/rootfs/proc proc rw 0 0\n"
        f"udev {b}/rootfs/dev devtmpfs rw 0 0\n"
        f"devpts {b}/rootfs/dev/pts devpts rw 0 0\n"
        f"sysfs {b}/rootfs/sys sysfs rw 0 0\n"
        f"proc {b}-other/proc proc rw 0 0\n"  # a sibling sharing the prefix is not below
        f"proc {b}/rootfs/proc proc rw 0 0\n"  # mounted twice: listed once
        "garbage\n"
        "\n"
    )
    return mounts


def test_mounts_under_deepest_first_with_escapes(tmp_path: Path) -> None:
    build = Path(os.path.realpath(tmp_path)) / "build one"
    mounts = write_mounts(tmp_path, str(build))
    found = workspace.mounts_under(build, mounts)
    assert found[0] == build / "rootfs/dev/pts"
    assert set(found[1:4]) == {build / "rootfs/proc", build / "rootfs/dev", build / "rootfs/sys"}
    assert found[4] == build
    assert len(found) == 5
    depths = [len(p.parts) for p in found]
    assert depths == sorted(depths, reverse=True)


def test_mounts_under_a_subtree_and_trailing_slash(tmp_path: Path) -> None:
    build = Path(os.path.realpath(tmp_path)) / "build one"
    mounts = write_mounts(tmp_path, str(build))
    dev = workspace.mounts_under(Path(f"{build}/rootfs/dev/"), mounts)
    assert dev == [build / "rootfs/dev/pts", build / "rootfs/dev"]
    assert workspace.mounts_under(build / "rootfs/usr", mounts) == []


def test_mounts_under_resolves_symlinks(tmp_path: Path) -> None:
    real = Path(os.path.realpath(tmp_path)) / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"proc {real}/rootfs/proc proc rw 0 0\n")
    assert workspace.mounts_under(link, mounts) == [real / "rootfs/proc"]


def test_mounts_under_real_proc_for_a_fresh_dir(tmp_path: Path) -> None:
    assert workspace.mounts_under(tmp_path) == []


def _try_in_another_thread(data: Path) -> BuildError | None:
    """What taking the lock in another thread (another build) raises, if anything."""
    raised: list[BuildError] = []

    def take() -> None:
        try:
            with workspace.build_lock(data):
                pass
        except BuildError as err:
            raised.append(err)

    thread = threading.Thread(target=take)
    thread.start()
    thread.join()
    return raised[0] if raised else None


def test_build_lock_is_exclusive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with workspace.build_lock(data):
        assert (data / "build.lock").read_text() == f"{os.getpid()}\n"
        err = _try_in_another_thread(data)
        assert err is not None and err.stage == "prepare"
        assert f"another build is running in {data} (pid {os.getpid()})" in str(err)
        with workspace.build_lock(data):  # this thread holds it: taking it again is a no-op
            pass
        assert _try_in_another_thread(data) is not None  # ... and leaves it held
    assert _try_in_another_thread(data) is None  # released: can be taken again


def test_build_lock_rewrites_a_stale_pid(tmp_path: Path) -> None:
    (tmp_path / "build.lock").write_text("999999999\n")
    with workspace.build_lock(tmp_path):
        assert (tmp_path / "build.lock").read_text() == f"{os.getpid()}\n"


def test_remove_tree_refuses_while_mounted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tree = tmp_path / "build-x"
    (tree / "rootfs/proc").mkdir(parents=True)
    swept: list[Path] = []

    def fake_sweep(path: Path) -> list[Path]:
        swept.append(path)
        return []

    monkeypatch.setattr(workspace, "sweep_mounts", fake_sweep)
    monkeypatch.setattr(workspace, "mounts_under", lambda path: [path / "rootfs/proc"])
    with pytest.raises(BuildError) as exc:
        workspace.remove_tree(tree)
    assert exc.value.stage == "cleanup"
    assert str(exc.value) == (
        f"stage cleanup: refusing to delete {tree}: still mounted: {tree / 'rootfs/proc'}"
    )
    assert swept == [tree]
    assert (tree / "rootfs/proc").is_dir()


def test_remove_tree_deletes_when_nothing_is_mounted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "build-x"
    (tree / "rootfs/etc").mkdir(parents=True)
    (tree / "rootfs/etc/hostname").write_text("x")
    monkeypatch.setattr(workspace, "sweep_mounts", lambda path: [])
    monkeypatch.setattr(workspace, "mounts_under", lambda path: [])
    workspace.remove_tree(tree)
    assert not tree.exists()
    workspace.remove_tree(tree)  # already gone: nothing to do


def test_sweep_mounts_unmounts_deepest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = [tmp_path / "r/dev/pts", tmp_path / "r/dev"]
    monkeypatch.setattr(workspace, "mounts_under", lambda path: points)
    calls: list[list[str]] = []

    class Done:
        def __init__(self, returncode: int) -> None:
            self.returncode = returncode

    def fake_run(argv: list[str], **kwargs: object) -> Done:
        calls.append(argv)
        return Done(1 if argv[1] != "--lazy" and argv[1].endswith("pts") else 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    assert workspace.sweep_mounts(tmp_path / "r") == points
    assert calls == [
        ["umount", str(points[0])],
        ["umount", "--lazy", str(points[0])],
        ["umount", str(points[1])],
    ]
