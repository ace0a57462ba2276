"""Reproducible images and incremental rebuilds, from four real builds shared by every check.

(a) the minimal spec S in full (--force; it keeps its tree); (a') `build --check`'s rebuild
of (a) (forced, full, nothing committed), whose artifacts must have (a)'s bytes; (b) S +
EXTRA, started from the newest kept tree: (a')'s; (d) S under another label, started from
(b)'s tree, so EXTRA and the dependencies only it needed must be purged: (d) must equal
(a), the same packages and versions, the same files apart from ALLOWED. The builder keeps
only the trees mmdebstrap made, so the test keeps (b)'s (copied after its rootfs stage,
saved once (b) is done): that spares a full build of S + EXTRA to start (d) from.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from helpers import TEST_CACHE, mounts_below, require_build_tools
from livestrap.builder import incremental
from livestrap.builder.basetree import TreeCache
from livestrap.builder.pipeline import STAGES, BuildContext, Stage, build, stage_rootfs
from livestrap.builder.recheck import CheckReport, check_image
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
EXTRA_DEPS = {"libjq1", "libonig5"}
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


@dataclass
class Builds:
    a: Built
    check: CheckReport
    check_log: str
    after_check: list[str]  # the store's images and tmp/ build dirs once the check is done
    b: Built
    d: Built
    b_tree: Path  # the entry (b)'s tree was kept as: what (d) starts from
    store: ImageStore


def one_build(
    store: ImageStore, spec: BuildSpec, log: Path, force: bool, stages: list[tuple[str, Stage]]
) -> Built:
    meta = build(
        resolve(spec), store, log_path=log, cache_dir=TEST_CACHE, force=force, stages=stages
    )
    return Built(meta, log.read_text(), store.path(meta.id) / "root.squashfs")


def copying_rootfs(dest: Path, made: dict[str, object]) -> list[tuple[str, Stage]]:
    """STAGES with a rootfs stage that copies the tree it made (before customize) to dest."""

    def rootfs(ctx: BuildContext) -> None:
        stage_rootfs(ctx)
        subprocess.run(["cp", "-a", str(ctx.rootfs), str(dest)], check=True)
        made.update(key=ctx.base_key, packages=ctx.spec.all_packages())

    return [(name, rootfs if name == "rootfs" else stage) for name, stage in STAGES]


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Builds:
    require_build_tools()
    tmp = tmp_path_factory.mktemp("incremental")
    store = ImageStore(tmp / "data")
    small = BuildSpec(label="incr", agent=False)
    # (a) full; its tree is the newest kept one for S's base inputs until (a') keeps its own
    a = one_build(store, small, tmp / "a.log", True, STAGES)
    check = check_image(
        store, a.meta, resolve(small), log_path=tmp / "check.log", cache_dir=TEST_CACHE
    )
    after_check = [i.id for i in store.list()] + [p.name for p in store.tmp_dir.iterdir()]
    # (b) from (a')'s tree, the newest for these base inputs; its own tree is copied out
    made: dict[str, object] = {}
    plus = BuildSpec(label="incr", agent=False, packages=[EXTRA])
    b = one_build(store, plus, tmp / "b.log", False, copying_rootfs(tmp / "b-tree", made))
    assert isinstance(made["key"], str) and isinstance(made["packages"], list)
    trees = TreeCache(CacheDir(TEST_CACHE).base_trees)
    cp = lambda src, dest: subprocess.run(["cp", "-a", str(src), str(dest)], check=True)  # noqa: E731
    kept = trees.save(tmp / "b-tree", made["key"], made["packages"], cp)
    kept.release()  # now the newest tree for S's base inputs: (d) starts from it
    # (d) has another label (not a base input), else the store would hand back (a)
    minus = BuildSpec(label="incr-minus", agent=False)
    d = one_build(store, minus, tmp / "d.log", False, STAGES)
    return Builds(a, check, (tmp / "check.log").read_text(), after_check, b, d, kept.entry, store)


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


def fetched(log: str) -> set[str]:
    return {m.group(1) for line in log.splitlines() if (m := DEB_DOWNLOAD.match(line))}


def owned(squashfs: Path, packages: set[str]) -> set[str]:
    """The paths dpkg lists for `packages` in an image, and their own dpkg info files."""
    paths = set()
    for pkg in packages:
        for name in (pkg, f"{pkg}:amd64"):
            listed = subprocess.run(
                ["unsquashfs", "-cat", str(squashfs), f"var/lib/dpkg/info/{name}.list"],
                capture_output=True, text=True,
            )  # fmt: skip
            if listed.returncode == 0:
                paths |= {line.lstrip("/") for line in listed.stdout.splitlines() if line != "/."}
    return paths


def dpkg_info_of(paths: set[str], packages: set[str]) -> set[str]:
    """Of `paths`, dpkg's own records of `packages` (name.list, name:amd64.md5sums, ...)."""
    info = "var/lib/dpkg/info/"
    return {
        p for p in paths
        if p.startswith(info) and re.split(r"[:.]", p[len(info):], maxsplit=1)[0] in packages
    }  # fmt: skip


# (a) and (a'): the same inputs built twice give the same bytes


def test_every_artifact_has_the_same_sha256(builds: Builds) -> None:
    differing = [a.name for a in builds.check.artifacts if not a.matches]
    assert differing == [], f"not reproduced: {differing}"
    assert {a.name for a in builds.check.artifacts} == set(builds.a.meta.artifacts)
    assert builds.check.matches
    assert "rootfs: full build (--force" in builds.check_log


def test_the_same_packages_and_epoch(builds: Builds) -> None:
    rebuilt, first = builds.check.rebuilt, builds.a.meta
    assert rebuilt.packages == first.packages
    assert rebuilt.inputs_sha256 == first.inputs_sha256
    assert first.source_date_epoch is not None
    assert rebuilt.source_date_epoch == first.source_date_epoch


def test_the_check_commits_nothing(builds: Builds) -> None:
    assert builds.after_check == [builds.a.meta.id]  # no image, no build-* dir left


def test_files_in_the_image_carry_the_epoch(builds: Builds) -> None:
    head = builds.a.squashfs.read_bytes()[:12]
    mkfs_time = int.from_bytes(head[8:12], "little")  # superblock: magic, inodes, mkfs_time
    assert mkfs_time == builds.a.meta.source_date_epoch


# (b) and (d): incremental builds from kept trees


def test_paths_taken(builds: Builds) -> None:
    assert builds.a.meta.base_tree is None and builds.check.rebuilt.base_tree is None
    key = builds.b.meta.base_tree
    assert key and builds.d.meta.base_tree == key and builds.b_tree.name.startswith(key)
    assert "rootfs: full build (--force" in builds.a.log
    assert f"rootfs: incremental from kept tree {key}" in builds.b.log
    assert f"packages added: {EXTRA}; removed: none" in builds.b.log
    assert "rootfs: initrd reused" in builds.b.log
    assert f"added: none; removed: {EXTRA}" in builds.d.log  # so it started from (b)'s tree


def test_metadata_lists_what_dpkg_has(builds: Builds) -> None:
    for one in (builds.b, builds.d):
        assert one.meta.packages == dpkg_installed(one.squashfs)


def test_added_package_on_top_of_the_full_build(builds: Builds, tmp_path: Path) -> None:
    """Without a full build of S + EXTRA, what one must have is derived from (a): the same
    packages at the same versions plus EXTRA and its new dependencies, every file of (a),
    and new files only from those packages (contents that change, such as dpkg's status or
    ld.so.cache, have no full-build reference here; (d) against (a) covers apt's work)."""
    a, b = builds.a, builds.b
    new = set(b.meta.packages) - set(a.meta.packages)
    assert new == {EXTRA, *EXTRA_DEPS}
    assert {p: v for p, v in b.meta.packages.items() if p not in new} == a.meta.packages
    a_files, b_files = (
        file_table(a.squashfs, tmp_path / "a"),
        file_table(b.squashfs, tmp_path / "b"),
    )
    assert set(a_files) - set(b_files) == set()
    added = set(b_files) - set(a_files)
    assert added - dpkg_info_of(added, new) - owned(b.squashfs, new) == set()


def test_removed_package_and_its_dependencies_are_gone(builds: Builds, tmp_path: Path) -> None:
    a, d = builds.a, builds.d
    assert not {EXTRA, *EXTRA_DEPS} & set(d.meta.packages)
    assert d.meta.packages == a.meta.packages
    diff = differences(
        file_table(a.squashfs, tmp_path / "a"), file_table(d.squashfs, tmp_path / "d")
    )
    assert set(diff) <= ALLOWED, diff


def test_incremental_builds_download_nothing_again(builds: Builds) -> None:
    new = set(builds.b.meta.packages) - set(builds.a.meta.packages)
    assert fetched(builds.b.log) <= new
    assert fetched(builds.d.log) == set()


def test_at_most_two_trees_kept_and_no_mount_left(builds: Builds) -> None:
    trees = CacheDir(TEST_CACHE).base_trees
    assert len([p for p in trees.iterdir() if not p.name.startswith(".")]) <= 2
    assert mounts_below(builds.store.data_dir) == []
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
