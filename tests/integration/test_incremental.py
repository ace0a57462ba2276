"""Incremental rebuilds against full builds of the same specs.

Four real builds, shared by every check: (a) the minimal spec S in full (it keeps its
tree), (b) S + EXTRA started from (a)'s tree, (c) S + EXTRA in full (--force: no tree
used; it keeps its own, which replaces (a)'s), (d) S again, started from (c)'s tree, so
EXTRA and the dependencies only it needed must be purged. (b) must equal (c) and (d)
must equal (a): the same packages and versions, the same files, apart from ALLOWED.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import TEST_CACHE, mounts_below, require_build_tools
from livestrap.builder import incremental
from livestrap.builder.basetree import TreeCache
from livestrap.builder.pipeline import BuildContext, build
from livestrap.datadir import CacheDir
from livestrap.errors import BuildCancelled, BuildError
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata

pytestmark = pytest.mark.integration

# One package with dependencies the minimal spec does not pull in (libjq1, libonig5) and
# no system account (a purge would leave one: such a removal is a full build).
EXTRA = "jq"
EXTRA_DEP = "libonig5"
# apt's "Get:N URI suite/comp arch NAME arch VERSION [size]", after the log's time stamp.
DEB_DOWNLOAD = re.compile(r"^\[ *[\d.]+\] Get:\d+ \S+ \S+ \S+ (\S+) \S+ \S+ \[")
# Files whose bytes an incremental build may leave different from a full build's: the
# records apt and dpkg keep of how the packages got there (not what is installed).
ALLOWED = {
    "var/lib/dpkg/status-old",  # dpkg's previous status: the step before the last one
    "var/lib/apt/extended_states",  # apt's auto marks, written in another order
    "var/cache/debconf/config.dat-old",
    "var/cache/debconf/templates.dat-old",
}


@dataclass
class Built:
    meta: ImageMetadata
    log: str
    squashfs: Path


def one_build(store: ImageStore, spec: BuildSpec, log: Path, force: bool) -> Built:
    meta = build(resolve(spec), store, log_path=log, cache_dir=TEST_CACHE, force=force)
    return Built(meta, log.read_text(), store.path(meta.id) / "root.squashfs")


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    require_build_tools()
    tmp = tmp_path_factory.mktemp("incremental")
    store = ImageStore(tmp / "data")
    small = BuildSpec(label="incr")
    plus = BuildSpec(label="incr", packages=[EXTRA])
    # (d) has another label (not a base input), else the store would hand back (a)
    minus = BuildSpec(label="incr-minus")
    runs = {"a": (small, True), "b": (plus, False), "c": (plus, True), "d": (minus, False)}
    built = {
        name: one_build(store, spec, tmp / f"{name}.log", force)
        for name, (spec, force) in runs.items()
    }
    built["store"] = Built(built["a"].meta, "", store.data_dir)  # for the mount check
    yield built


def dpkg_installed(squashfs: Path) -> dict[str, str]:
    status = subprocess.run(
        ["unsquashfs", "-cat", str(squashfs), "var/lib/dpkg/status"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    found = {}
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^(\S+): (.*)\Z", line)[0] for line in stanza.splitlines()
                      if re.match(r"^\S+: ", line))  # fmt: skip
        if fields.get("Status") == "install ok installed":
            found[fields["Package"]] = fields["Version"]
    return found


def file_table(squashfs: Path, dest: Path) -> dict[str, str]:
    """Every path of the image: type, mode, owner, and the sha256 or link target."""
    subprocess.run(["unsquashfs", "-q", "-no-progress", "-d", str(dest), str(squashfs)],
                   check=True, capture_output=True)  # fmt: skip
    table = {}
    for top, dirs, files in os.walk(dest):
        for name in [*dirs, *files]:
            path = Path(top) / name
            st = path.lstat()
            what = f"{stat.S_IFMT(st.st_mode):o}:{st.st_mode & 0o7777:o}:{st.st_uid}:{st.st_gid}"
            if path.is_symlink():
                what += ":" + os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                what += ":" + hashlib.sha256(path.read_bytes()).hexdigest()
            table[str(path.relative_to(dest))] = what
    subprocess.run(["rm", "-rf", str(dest)], check=True)
    return table


def differences(one: dict[str, str], other: dict[str, str]) -> list[str]:
    return sorted(p for p in one.keys() | other.keys() if one.get(p) != other.get(p))


def test_paths_taken(builds: dict[str, Built]) -> None:
    assert [builds[n].meta.base_tree for n in "ac"] == [None, None]
    key = builds["b"].meta.base_tree
    assert key and builds["d"].meta.base_tree == key
    assert "rootfs: full build (--force" in builds["a"].log
    assert f"rootfs: incremental from kept tree {key}" in builds["b"].log
    assert f"packages added: {EXTRA}; removed: none" in builds["b"].log
    assert f"added: none; removed: {EXTRA}" in builds["d"].log
    assert "rootfs: initrd " in builds["b"].log


def test_metadata_lists_what_dpkg_has(builds: dict[str, Built]) -> None:
    for name in "bd":
        assert builds[name].meta.packages == dpkg_installed(builds[name].squashfs)


def test_added_package_like_a_full_build(builds: dict[str, Built], tmp_path: Path) -> None:
    b, c = builds["b"], builds["c"]
    assert EXTRA in b.meta.packages and EXTRA_DEP in b.meta.packages
    assert b.meta.packages == c.meta.packages
    diff = differences(
        file_table(b.squashfs, tmp_path / "b"), file_table(c.squashfs, tmp_path / "c")
    )
    assert set(diff) <= ALLOWED, diff


def test_removed_package_and_its_dependency_are_gone(
    builds: dict[str, Built], tmp_path: Path
) -> None:
    a, d = builds["a"], builds["d"]
    assert EXTRA not in d.meta.packages and EXTRA_DEP not in d.meta.packages
    assert d.meta.packages == a.meta.packages
    diff = differences(
        file_table(a.squashfs, tmp_path / "a"), file_table(d.squashfs, tmp_path / "d")
    )
    assert set(diff) <= ALLOWED, diff


def test_incremental_builds_download_nothing_again(builds: dict[str, Built]) -> None:
    new = set(builds["b"].meta.packages) - set(builds["a"].meta.packages)
    for name, allowed in (("b", new), ("d", set())):
        fetched = {m.group(1) for line in builds[name].log.splitlines()
                   if (m := DEB_DOWNLOAD.match(line))}  # fmt: skip
        assert fetched <= allowed, (name, fetched)


def test_at_most_two_trees_kept_and_no_mount_left(builds: dict[str, Built]) -> None:
    trees = CacheDir(TEST_CACHE).base_trees
    assert len([p for p in trees.iterdir() if not p.name.startswith(".")]) <= 2
    assert mounts_below(builds["store"].squashfs) == []
    assert mounts_below(trees) == []


@pytest.mark.parametrize("raised", [KeyboardInterrupt, RuntimeError])
def test_an_ended_build_leaves_no_overlay_and_frees_the_tree(
    tmp_path: Path, raised: type[BaseException]
) -> None:
    """No real build: a rootfs stage keeps a tiny tree, overlays it, then the build ends
    by Ctrl-C (SIGTERM is turned into the same KeyboardInterrupt by the CLI) or an error."""
    store = ImageStore(tmp_path / "data")
    key = Path(__file__).parents[1] / "fixtures/keys/archive-test.asc"
    tiny = BuildSpec(label="tiny", mirror="http://deb.example/debian", mirror_key=key)
    spec = resolve(tiny, environ={}, apt_root=Path("/nonexistent"))

    def rootfs(ctx: BuildContext) -> None:
        (ctx.rootfs / "etc").mkdir(parents=True)
        (ctx.rootfs / "etc/hostname").write_text("tiny\n")
        ctx.base_key = "k" * 64
        incremental.keep(ctx)
        (ctx.rootfs / "etc/hostname").write_text("changed in the overlay only\n")
        assert mounts_below(ctx.workdir) == [str(ctx.rootfs)]
        raise raised("stop")

    with pytest.raises((BuildCancelled, BuildError)):
        build(spec, store, log_path=tmp_path / "b.log", stages=[("rootfs", rootfs)],
              cache_dir=tmp_path / "cache")  # fmt: skip
    assert mounts_below(tmp_path) == []
    (entry,) = CacheDir(tmp_path / "cache").base_trees.glob("k*")
    fd = os.open(entry, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the build holds it no more
    finally:
        os.close(fd)
    kept = TreeCache(entry.parent).find("k" * 64)
    assert kept is not None and (kept.root / "etc/hostname").read_text() == "tiny\n"
    kept.release()
