"""`<data-dir>/tmp/` has one owner (store.tmpdirs): what a killed process left is erased
before the next import, what a live one is using is not (issue 11: `kill -9` during an
import left its 734 MB temp tree forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from store_helpers import (
    image_members,
    store_fixture,  # noqa: F401  (provides the `store` fixture)
    tmp_entries,
    write_tar,
)

from livestrap.store import tmpdirs
from livestrap.store.bundle import import_image
from livestrap.store.images import ImageStore

pytestmark = [pytest.mark.unit, pytest.mark.security]

KILLED_MID_IMPORT = """
import os, signal, sys
from pathlib import Path
from livestrap.store import tmpdirs
staging = tmpdirs.make_dir(Path(sys.argv[1]), "import")
(staging / "root.squashfs").write_bytes(b"half an image" * 1000)
upload_fd, upload = tmpdirs.make_file(Path(sys.argv[1]), "upload", ".bundle")
os.write(upload_fd, b"half a bundle")
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_mid_import(tmp_dir: Path) -> list[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", KILLED_MID_IMPORT, str(tmp_dir)], env=env)
    assert proc.returncode == -signal.SIGKILL
    left = sorted(p.name for p in tmp_dir.iterdir())
    assert len(left) == 2
    return left


def test_import_erases_what_a_killed_import_left(store: ImageStore, tmp_path: Path) -> None:
    left = _killed_mid_import(store.tmp_dir)
    assert [n.split("-")[0] for n in left] == ["import", "upload"]
    import_image(store, write_tar(tmp_path / "ok.tar", image_members("img1")))
    assert tmp_entries(store) == []
    assert store.get("img1").id == "img1"


def test_master_start_cleaning_keeps_live_entries(store: ImageStore) -> None:
    left = _killed_mid_import(store.tmp_dir)
    mine = tmpdirs.make_dir(store.tmp_dir, "import")
    build = store.new_staging_dir("build-")
    (store.tmp_dir / "someone-elses").write_text("x")
    assert store.clean_stale_tmp() == left
    assert tmp_entries(store) == sorted([mine.name, build.name, "someone-elses"])


def test_reused_pid_is_not_the_owner(store: ImageStore) -> None:
    """Same pid, another start time: a process that reused the pid of a killed master."""
    tag = tmpdirs.owner_tag()
    pid, start, host = tag.split(".")
    if start == "0":
        pytest.skip("no /proc start times here")
    other = store.tmp_dir / f"import-{pid}.{int(start) - 1}.{host}-abcdef"
    other.mkdir(parents=True)
    live = store.tmp_dir / f"import-{tag}-abcdef"
    live.mkdir()
    assert store.clean_stale_tmp() == [other.name]
    assert tmp_entries(store) == [live.name]


def test_another_machines_entries_go_only_when_untouched_for_a_day(store: ImageStore) -> None:
    """Masters on several hosts share a data dir: a pid of another machine says nothing
    here, so its entry is kept while it is written to, and goes once left for a day."""
    dead = _dead_pid()
    other = f"{int(tmpdirs.machine_tag(), 16) ^ 1:08x}{tmpdirs.boot_tag()}"
    busy = store.tmp_dir / f"upload-{dead}.5.{other}-abc.bundle"
    left = store.tmp_dir / f"import-{dead}.5.{other}-def"
    (left / "half").mkdir(parents=True)
    busy.write_bytes(b"half a bundle")
    old = time.time() - tmpdirs.FOREIGN_STALE_S - 60
    for path in (left, left / "half"):
        os.utime(path, (old, old))
    assert store.clean_stale_tmp() == [left.name]
    assert tmp_entries(store) == [busy.name]
    os.utime(busy, (old, old))
    assert store.clean_stale_tmp() == [busy.name]


def test_an_entry_of_an_earlier_boot_is_stale_and_an_untagged_one_is_judged_here(
    store: ImageStore,
) -> None:
    """A live pid of this machine's earlier boot is another process now; names from before
    the host tag (pid.start only) are taken as this machine's, as before."""
    pid, start, host = tmpdirs.owner_tag().split(".")
    earlier = f"{host[:8]}{int(host[8:], 16) ^ 1:08x}"
    before_boot = store.tmp_dir / f"export-{pid}.{start}.{earlier}-abc.tar.zst"
    untagged = store.tmp_dir / f"export-{pid}.{start}-def.tar.zst"
    store.tmp_dir.mkdir(parents=True)
    for path in (before_boot, untagged):
        path.write_bytes(b"x")
    assert store.clean_stale_tmp() == [before_boot.name]
    assert tmp_entries(store) == [untagged.name]  # this very process: alive


def test_legacy_names_are_stale(store: ImageStore) -> None:
    store.tmp_dir.mkdir(parents=True)
    for name in ("import-x1y2", "delete-abc", "api-upload-q.bundle", "api-export-z.tar.zst"):
        (store.tmp_dir / name).mkdir()
    assert len(store.clean_stale_tmp()) == 4
    assert tmp_entries(store) == []


def test_names_carry_kind_and_owner(store: ImageStore) -> None:
    path = tmpdirs.make_dir(store.tmp_dir, "import")
    assert path.name.startswith(f"import-{os.getpid()}.")
    assert (path.stat().st_mode & 0o777) == 0o700
    with pytest.raises(ValueError, match="lower-case"):
        tmpdirs.make_dir(store.tmp_dir, "../x")


def test_clean_stale_builds(tmp_path: Path) -> None:
    """Moved from test_build_workspace (workspace.clean_stale_builds is now this sweep, kind
    BUILD): every build tree goes, through the eraser; files and other kinds stay."""
    erased: list[Path] = []

    def eraser(path: Path) -> None:  # builder.workspace.remove_tree unmounts first
        erased.append(path)
        tmpdirs.erase(path)

    tmp = tmp_path / "tmp"
    (tmp / "build-abc/rootfs").mkdir(parents=True)
    (tmp / "import-xyz").mkdir()
    (tmp / "build-file").write_text("not a dir")
    assert tmpdirs.clean_stale(tmp, (tmpdirs.BUILD,), eraser=eraser) == ["build-abc"]
    assert erased == [tmp / "build-abc"]
    assert sorted(p.name for p in tmp.iterdir()) == ["build-file", "import-xyz"]
    assert tmpdirs.clean_stale(tmp_path / "missing", (tmpdirs.BUILD,), eraser=eraser) == []


def test_build_sweep_needs_an_eraser(store: ImageStore, tmp_path: Path) -> None:
    """Build trees may hold bind mounts (/dev): the plain rmtree default must never reach
    them, so sweeping BUILD without the unmount-first eraser is refused, before any erase."""
    tmp = tmp_path / "tmp"
    (tmp / "build-abc/dev").mkdir(parents=True)
    for kinds in ((tmpdirs.BUILD,), (*tmpdirs.KINDS, tmpdirs.BUILD)):
        with pytest.raises(ValueError, match="eraser"):
            tmpdirs.clean_stale(tmp, kinds)
        with pytest.raises(ValueError, match="eraser"):
            tmpdirs.clean_stale(tmp_path / "missing", kinds)
    assert (tmp / "build-abc/dev").is_dir()
    store.new_staging_dir("build-")
    with pytest.raises(ValueError, match="eraser"):
        store.clean_stale_tmp((tmpdirs.BUILD,))
    assert tmpdirs.clean_stale(tmp) == []  # the default kinds need none


def test_build_sweep_takes_live_trees_and_leaves_links(store: ImageStore, tmp_path: Path) -> None:
    """A build tree is stale to the lock's holder even if its maker lives (the lock says no
    build runs); a link is not followed, and the import sweep's entries are not its own."""
    live_build = store.new_staging_dir("build-")
    live_import = tmpdirs.make_dir(store.tmp_dir, "import")
    (tmp_path / "elsewhere").mkdir()
    (store.tmp_dir / "build-link").symlink_to(tmp_path / "elsewhere")
    dead_import = store.tmp_dir / f"import-{_dead_pid()}.1-abcdef"
    dead_import.mkdir()
    erased: list[str] = []

    def eraser(path: Path) -> None:  # builder.workspace.remove_tree unmounts first
        erased.append(path.name)
        tmpdirs.erase(path)

    assert store.clean_stale_tmp((tmpdirs.BUILD,), eraser=eraser) == [live_build.name]
    assert erased == [live_build.name]
    assert tmp_entries(store) == sorted(["build-link", dead_import.name, live_import.name])
    assert (tmp_path / "elsewhere").is_dir()
    assert store.clean_stale_tmp() == [dead_import.name]  # the default: not build trees
    assert tmp_entries(store) == sorted(["build-link", live_import.name])


def test_legacy_names_go_with_their_kind(tmp_path: Path) -> None:
    for name in ("import-x1y2", "api-upload-q.bundle", "build-old"):
        (tmp_path / name).mkdir()
    assert tmpdirs.clean_stale(tmp_path, ("upload",)) == ["api-upload-q.bundle"]
    assert tmpdirs.clean_stale(tmp_path, ("delete", "export")) == []
    assert tmpdirs.clean_stale(tmp_path) == ["import-x1y2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["build-old"]


def _dead_pid() -> int:
    """A pid no process has (a child that has been reaped)."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid
