"""Incremental rebuilds: the root tree as mmdebstrap left it, kept by its base inputs.

The base key covers every build input except the package list and the customization
(extra dirs, scripts, root access); a build whose base key matches a kept tree starts
from it: apt installs and purges only the difference, then customize and the later
stages run as usual. The tree is kept by renaming the finished rootfs into the cache and
mounting an overlay (the kept tree as its read-only lower layer) where the rootfs was,
so keeping it costs no copy, and a build started from it copies only what it changes.
The overlay is mounted under the build's workdir: workspace.remove_tree unmounts it on
every way a build ends, and the stale-tree sweep after a SIGKILL.

Each kept tree is held with a shared flock while a build uses it; pruning takes an
exclusive one without waiting and leaves a tree in use for a later prune.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from livestrap.builder.customize import POLICY_RC_D
from livestrap.builder.fingerprint import builder_sha256, local_inputs
from livestrap.builder.rootfs import private_ns
from livestrap.builder.workspace import remove_tree
from livestrap.errors import BuildError
from livestrap.spec import DEFAULT_MAX_IMAGE_MB, DEFAULT_MIN_BOOT_RAM_MB, ResolvedSpec

KEEP = 2
ROOT = "root"  # the tree inside a kept entry
INFO = "tree.json"  # its key and the package list it was made with
PARTIAL = ".partial-"  # an entry being written (or left by a killed build)
LOCK = ".lock"  # the cache-wide lock: lookups, saves and prunes one at a time
OVERLAY_UNSAFE = (",", ":", "\\")  # characters the overlay mount options cannot carry
DPKG_INFO = "var/lib/dpkg/info"
# Run state the delta's ldconfig writes that mmdebstrap's tree does not have (customize
# clears apt's own caches, lists and logs).
RUN_STATE = ("var/cache/ldconfig/aux-cache",)
# What a maintainer script makes system accounts with; a purge leaves them (Debian policy).
ACCOUNT_MAKERS = re.compile(r"\b(adduser|useradd|addgroup|groupadd|systemd-sysusers)\b")

# Fields that only the customize stage and later ones read, and the package list.
NOT_BASE: dict[str, object] = {
    "label": "livestrap",
    "packages": [],
    "firmware": [],  # packages too (ResolvedSpec.all_packages); its component stays in
    "kernel_options": [],
    "extra_dirs": [],
    "scripts": [],
    "ssh_authorized_keys": [],
    "root_password_hash": None,
    "compression": "zstd",
    "max_image_mb": DEFAULT_MAX_IMAGE_MB,  # the guards judge the result, not the tree
    "min_boot_ram_mb": DEFAULT_MIN_BOOT_RAM_MB,
}

# Runs as root in a private mount namespace: the chroot's /proc, /sys, /dev, the package
# cache (as apt's archives) and the local repositories' folders die with it.
DELTA_SCRIPT = (
    'set -e; R="$1"; C="$2"; L="$3"; shift 3; '
    'mount -t proc proc "$R/proc"; '
    'mount -t sysfs sysfs "$R/sys"; '
    'mount --rbind /dev "$R/dev"; '
    'mount --bind "$C" "$R/var/cache/apt/archives"; '
    'for d in $L; do mount --bind "$d" "$R$d"; done; '
    'rm -f "$R/etc/resolv.conf"; cp -L /etc/resolv.conf "$R/etc/resolv.conf"; '
    'exec chroot "$R" /bin/sh -c "$1"'
)


def base_key(spec: ResolvedSpec, upstream: dict[str, str]) -> str:
    """sha256 of everything that decides the tree mmdebstrap makes, minus the packages:
    builder code, suite, mirror, components, repos with pins and priorities and keys,
    kernel, the agent choice, and each source's InRelease."""
    base = spec.model_copy(update=NOT_BASE)
    blob = json.dumps(
        {
            "builder": builder_sha256(),
            "spec": base.model_dump(mode="json"),
            "keys": local_inputs(base),
            "upstream": upstream,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Tree:
    """A kept tree, held (shared flock on its entry) until `release`."""

    entry: Path
    key: str
    packages: list[str]
    fd: int

    @property
    def root(self) -> Path:
        return self.entry / ROOT

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _hold(entry: Path, exclusive: bool = False) -> int | None:
    """An fd holding entry's flock (shared, or exclusive without waiting), or None."""
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


class TreeCache:
    """The kept trees in one folder (CacheDir.base_trees)."""

    def __init__(self, folder: Path, keep: int = KEEP) -> None:
        self.folder = folder
        self.keep = keep

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.folder / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _entries(self) -> list[tuple[int, str, Path]]:
        """Complete entries, newest first: (saved ns, key, entry)."""
        found = []
        for entry in self.folder.glob("*.*") if self.folder.is_dir() else ():
            key, _, stamp = entry.name.partition(".")
            if stamp.isdigit() and (entry / INFO).is_file() and (entry / ROOT).is_dir():
                found.append((int(stamp), key, entry))
        return sorted(found, reverse=True)

    def find(self, key: str) -> Tree | None:
        """The newest kept tree for `key`, held; None when there is none."""
        with self._locked():
            for _, entry_key, entry in self._entries():
                if entry_key != key:
                    continue
                fd = _hold(entry)
                if fd is None:
                    continue
                info = json.loads((entry / INFO).read_text())
                return Tree(entry, key, list(info["packages"]), fd)
        return None

    def save(
        self, rootfs: Path, key: str, packages: list[str], copy: Callable[[Path, Path], object]
    ) -> Tree:
        """Move `rootfs` into the cache as the tree for `key` (held); prune the rest.
        `copy` (cp -a) only when the cache is on another filesystem than the build."""
        with self._locked():
            partial = self.folder / f"{PARTIAL}{os.getpid()}-{time.time_ns()}"
            partial.mkdir(mode=0o700)
            fd = _hold(partial)
            assert fd is not None
            try:
                _move(rootfs, partial / ROOT, copy)
                info = {"key": key, "packages": packages}
                (partial / INFO).write_text(json.dumps(info, indent=1) + "\n")
                entry = self.folder / f"{key}.{time.time_ns()}"
                os.rename(partial, entry)
            except BaseException:
                os.close(fd)  # what was written is pruned as a partial entry later
                raise
            self._prune()
        return Tree(entry, key, packages, fd)

    def _prune(self) -> list[Path]:
        """Keep the newest tree of the newest `keep` keys; delete the rest not in use."""
        kept: list[str] = []
        wanted: set[Path] = set()
        for _, key, entry in self._entries():
            if key not in kept and len(kept) < self.keep:
                kept.append(key)
                wanted.add(entry)
        removed = []
        for entry in sorted(self.folder.iterdir()):
            if entry.name == LOCK or entry in wanted:
                continue
            fd = _hold(entry, exclusive=True)
            if fd is None:
                continue  # a build uses it (or it is being written): a later prune
            try:
                remove_tree(entry)
            finally:
                os.close(fd)
            removed.append(entry)
        return removed

    def keys(self) -> list[str]:
        return [key for _, key, _ in self._entries()]


def _move(src: Path, dest: Path, copy: Callable[[Path, Path], object]) -> None:
    """Rename (the cache is usually on the build's filesystem), else copy and delete."""
    try:
        os.rename(src, dest)
    except OSError as err:
        if err.errno != errno.EXDEV:
            raise
        copy(src, dest)
        remove_tree(src)


def overlay_argv(lower: Path, upper: Path, work: Path, merged: Path) -> list[str]:
    """mount(8) argv for an overlay of `upper` over the read-only `lower` (pure)."""
    unsafe = [str(p) for p in (lower, upper, work) if any(c in str(p) for c in OVERLAY_UNSAFE)]
    if unsafe:
        raise BuildError("rootfs", f"overlay cannot name these paths: {', '.join(unsafe)}")
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    return ["mount", "-t", "overlay", "overlay", "-o", options, str(merged)]


def mount_over(tree: Tree, workdir: Path, merged: Path, run: Callable[[list[str]], object]) -> None:
    """The kept tree, writable at `merged` through an overlay whose layers live in workdir."""
    upper, work = workdir / "overlay-upper", workdir / "overlay-work"
    for folder in (upper, work, merged):
        folder.mkdir()
    run(overlay_argv(tree.root, upper, work, merged))


def delta(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """(added, removed) between two package lists; `name=version` counts as its own entry."""
    return [p for p in new if p not in old], [p for p in old if p not in new]


def apt_commands(new: list[str], removed: list[str]) -> str:
    """Shell run in the chroot: the new list installed (so each is marked manual), what
    left the list marked automatic, then every package nothing needs any more purged.
    A removed name that another package still depends on stays, as a full build would
    pull it in as that package's dependency."""
    names = {p.split("=", 1)[0] for p in new}
    gone = sorted({p.split("=", 1)[0] for p in removed} - names)
    steps = ["export DEBIAN_FRONTEND=noninteractive"]
    if gone:
        steps.append(shlex.join(["apt-mark", "auto", *gone]))
    steps.append(shlex.join(["apt-get", "install", "--yes", "--no-remove", *new]))
    steps.append("apt-get autoremove --purge --yes")
    return " && ".join(steps)


def local_repo_dirs(spec: ResolvedSpec) -> list[str]:
    """Host folders of file: and copy: sources, which the chroot must see at their path."""
    uris = [spec.mirror, *(repo.uri for repo in spec.repos)]
    return sorted({urlsplit(u).path for u in uris if urlsplit(u).scheme in ("file", "copy")})


def delta_argv(rootfs: Path, cache: Path, local_dirs: list[str], commands: str) -> list[str]:
    """The apt run in the tree, its mounts in a private namespace (pure)."""
    local = " ".join(local_dirs)
    script = [str(rootfs), str(cache), local, commands]
    return private_ns(["/bin/sh", "-c", DELTA_SCRIPT, "livestrap-delta", *script])


def initrd_state(rootfs: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime ns) of every initrd in /boot: how to tell whether apt remade one."""
    return {
        p.name: (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted((rootfs / "boot").glob("initrd.img-*"))
    }


def apply_delta(
    rootfs: Path,
    spec: ResolvedSpec,
    old: list[str],
    cache: Path,
    run: Callable[[list[str]], object],
) -> tuple[list[str], list[str]]:
    """Bring the tree from package list `old` to the spec's; returns (added, removed).
    Daemons may not start (policy-rc.d, removed afterwards); the mount points made for
    local repositories are removed again so the image does not carry them."""
    new = spec.all_packages()
    added, removed = delta(old, new)
    if not added and not removed:
        return added, removed
    policy = rootfs / "usr/sbin/policy-rc.d"
    had_policy = policy.exists()
    made: list[Path] = []
    try:
        if not had_policy:
            policy.write_text(POLICY_RC_D)
            policy.chmod(0o755)
        dirs = local_repo_dirs(spec)
        for d in dirs:
            made += _make_dirs(rootfs / d.lstrip("/"))
        run(delta_argv(rootfs, cache, dirs, apt_commands(new, removed)))
    finally:
        if not had_policy:
            policy.unlink(missing_ok=True)
        for folder in reversed(made):
            with contextlib.suppress(OSError):
                folder.rmdir()
    return added, removed


def _make_dirs(path: Path) -> list[Path]:
    """mkdir -p, returning the folders it made, outermost first."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir()
    return list(reversed(missing))


def installed(rootfs: Path) -> set[str]:
    """Names of the packages dpkg has installed in a tree (from its status file)."""
    status = rootfs / "var/lib/dpkg/status"
    names = set()
    for stanza in status.read_text(errors="replace").split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if fields.get("Status") == "install ok installed" and "Package" in fields:
            names.add(fields["Package"])
    return names


def account_makers(lower: Path, gone: set[str]) -> list[str]:
    """Of the packages the delta removed, those whose maintainer scripts (or a sysusers.d
    file) make system accounts: a purge leaves the account, which a full build without
    the package never had. Read from the kept tree, which still has their dpkg info."""
    info = lower / DPKG_INFO
    found = []
    for pkg in sorted(gone):
        for name in (pkg, f"{pkg}:amd64"):
            script, files = info / f"{name}.postinst", info / f"{name}.list"
            makes = script.is_file() and ACCOUNT_MAKERS.search(script.read_text(errors="replace"))
            if makes or (files.is_file() and "/sysusers.d/" in files.read_text(errors="replace")):
                found.append(pkg)
                break
    return found


def drop_run_state(lower: Path, rootfs: Path) -> list[str]:
    """Remove the RUN_STATE files the delta made where the kept tree has none."""
    dropped = []
    for rel in RUN_STATE:
        if not (lower / rel).exists() and (rootfs / rel).exists():
            (rootfs / rel).unlink()
            dropped.append(rel)
    return dropped
