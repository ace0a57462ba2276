"""Firmware in the image: only the files its kept kernel modules may load stay.

Debian's firmware-* packages cover whole families (firmware-misc-nonfree holds Intel
E810's DDP package next to i915's and nvidia's), and a discovery image drops graphics,
sound and wireless modules (builder.slim), so most of it would be dead weight. After
the module trees are dropped, the firmware names every kept module declares
(builder.kmodinfo) decide: a file under lib/firmware is kept when one of them names it
(also as `updates/NAME`, `KVER/NAME`, or compressed, `.xz`/`.zst`: where and how the
kernel looks it up); a kept link keeps what it points to (inside lib/firmware); licence
files (LICENCE*, LICENSE*, WHENCE*) stay; every other file and link a package installed
goes, then the folders left empty. Files no package owns (the spec's extra_dirs or
scripts put them there) are the operator's: they stay. A driver that loads a file it
does not declare loses it (cxgb4's optional config files, for one); the build log
counts what each package kept.

The initramfs was made earlier (the rootfs stage, once every package was in):
initramfs-tools copies the declared firmware of each module it adds, so a NIC that
live-boot's fetch= brings up in the initramfs has its firmware there too.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from livestrap.builder.kmodinfo import ModuleError, tree_refs

if TYPE_CHECKING:
    from livestrap.builder.pipeline import BuildContext

COMPRESSED = (".xz", ".zst")
LICENCE_PREFIXES = ("LICENCE", "LICENSE", "WHENCE")
GLOB_CHARS = frozenset("*?[")
MAX_LINK_HOPS = 40
FIRMWARE_ROOTS = ("/usr/lib/firmware/", "/lib/firmware/")
MAX_MODULES_SHOWN = 12
DPKG_INFO = "var/lib/dpkg/info"


@dataclass
class Pruned:
    """What pruning kept and removed: path (relative to lib/firmware) -> bytes (0 for a
    link), and which modules each kept path serves."""

    kept: dict[str, int] = field(default_factory=dict)
    removed: dict[str, int] = field(default_factory=dict)
    users: dict[str, set[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PackageCoverage:
    """One firmware package after pruning: what stayed, for which modules, what went."""

    package: str
    version: str | None
    modules: tuple[str, ...]
    kept_files: int
    kept_bytes: int
    removed_files: int
    removed_bytes: int

    def describe(self) -> str:
        shown = ", ".join(self.modules[:MAX_MODULES_SHOWN])
        more = len(self.modules) - MAX_MODULES_SHOWN
        users = f"for {shown}{f' (+{more} more)' if more > 0 else ''}" if shown else "for no module"
        return (
            f"firmware {self.package} {self.version or '(not installed)'}: "
            f"{self.kept_files} files ({_mb(self.kept_bytes)}) kept {users}; "
            f"{self.removed_files} files ({_mb(self.removed_bytes)}) dropped"
        )


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def firmware_dir(rootfs: Path) -> Path | None:
    """The tree's firmware folder (usr/lib/firmware on merged /usr), None if it has none."""
    for rel in ("usr/lib/firmware", "lib/firmware"):
        path = rootfs / rel
        if path.is_dir() and not path.is_symlink():
            return path
    return None


def lookup_names(rel: str, kernel_version: str) -> list[str]:
    """The names under which the kernel finds a file at `rel` (fw_path plus a
    compression suffix): `updates/KVER/X`, `updates/X`, `KVER/X` and `X` all serve X."""
    for suffix in COMPRESSED:
        if rel.endswith(suffix):
            rel = rel[: -len(suffix)]
            break
    names = [rel]
    for prefix in (f"updates/{kernel_version}/", "updates/", f"{kernel_version}/"):
        if rel.startswith(prefix):
            names.append(rel[len(prefix) :])
            break
    return names


def _listing(fwdir: Path) -> dict[str, Path]:
    """Every file and link under fwdir (links to folders included, never followed)."""
    found: dict[str, Path] = {}
    for top, dirs, files in os.walk(fwdir):
        here = Path(top)
        for name in [*files, *(d for d in dirs if (here / d).is_symlink())]:
            path = here / name
            found[path.relative_to(fwdir).as_posix()] = path
    return found


def _path_to(fwdir: Path, rel: str, listing: Mapping[str, Path]) -> list[str]:
    """What the kernel opens to load `rel`: every link on the way (a linked folder too)
    and the file it ends at, relative to fwdir; a folder stands for all it holds; []
    when nothing is there or the way leaves fwdir."""
    on_the_way: list[str] = []
    done: list[str] = []
    todo = rel.split("/")
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                return []
            done.pop()
            continue
        here = "/".join([*done, part])
        path = fwdir / here
        if path.is_symlink():
            hops += 1
            target = os.readlink(path)
            if hops > MAX_LINK_HOPS:
                return []
            if target.startswith("/"):
                base = next((b for b in FIRMWARE_ROOTS if target.startswith(b)), None)
                if base is None:
                    return []
                done, target = [], target[len(base) :]
            on_the_way.append(here)
            todo = target.split("/") + todo
            continue
        if not path.exists():
            return []
        done.append(part)
    end = "/".join(done)
    if (fwdir / end).is_dir():
        return on_the_way + [r for r in listing if r.startswith(end + "/")]
    return [*on_the_way, end] if end else []


def _candidates(ref: str, kernel_version: str) -> list[str]:
    """Where the kernel looks for a declared name (its fw_path order), each also as
    the compressed file it can load."""
    places = [f"updates/{kernel_version}/{ref}", f"updates/{ref}", f"{kernel_version}/{ref}", ref]
    return [f"{p}{suffix}" for p in places for suffix in ("", *COMPRESSED)]


def prune(
    fwdir: Path,
    refs: Mapping[str, Iterable[str]],
    kernel_version: str,
    owned: set[str] | None = None,
) -> Pruned:
    """Keep what `refs` (module -> declared firmware) names, with the links on the way;
    licence files; and (when `owned` is given) what no package owns. Remove the rest
    and the folders it leaves empty."""
    listing = _listing(fwdir)
    users: dict[str, set[str]] = {}

    def serve(rel: str, module: str) -> None:
        for found in _path_to(fwdir, rel, listing):
            users.setdefault(found, set()).add(module)

    for module, names in refs.items():
        for ref in names:
            if any(c in GLOB_CHARS for c in ref):  # brcmfmac declares globs
                for rel in listing:
                    if any(fnmatch.fnmatchcase(n, ref) for n in lookup_names(rel, kernel_version)):
                        serve(rel, module)
                continue
            for rel in _candidates(ref, kernel_version):
                serve(rel, module)
    keep = set(users) | {r for r in listing if PurePosixPath(r).name.startswith(LICENCE_PREFIXES)}
    if owned is not None:
        keep |= set(listing) - owned
    result = Pruned(users={r: users.get(r, set()) for r in keep})
    for rel, path in sorted(listing.items()):
        size = 0 if path.is_symlink() else path.lstat().st_size
        if rel in keep:
            result.kept[rel] = size
        else:
            path.unlink()
            result.removed[rel] = size
    for top, _dirs, _files in sorted(os.walk(fwdir), key=lambda w: -len(w[0])):
        here = Path(top)
        if here != fwdir and not any(here.iterdir()):
            here.rmdir()
    return result


def _firmware_lines(listed: Path) -> set[str]:
    """The lib/firmware paths of one dpkg .list file, relative to lib/firmware."""
    paths = set()
    for line in listed.read_text(errors="replace").splitlines():
        for base in ("/usr/lib/firmware/", "/lib/firmware/"):
            if line.startswith(base):
                paths.add(line[len(base) :])
                break
    return paths


def package_paths(rootfs: Path, package: str) -> set[str]:
    """The paths under lib/firmware dpkg lists for a package (relative to lib/firmware)."""
    paths = set()
    for name in (package, f"{package}:all", f"{package}:amd64"):
        listed = rootfs / DPKG_INFO / f"{name}.list"
        if listed.is_file():
            paths |= _firmware_lines(listed)
    return paths


def owned_paths(rootfs: Path) -> set[str]:
    """Every lib/firmware path any installed package lists."""
    paths = set()
    for listed in sorted((rootfs / DPKG_INFO).glob("*.list")):
        paths |= _firmware_lines(listed)
    return paths


def coverage(
    rootfs: Path, pruned: Pruned, packages: Mapping[str, str | None]
) -> list[PackageCoverage]:
    """Per package (name -> installed version): the modules its kept files serve, the
    files and bytes kept and dropped."""
    found = []
    for package, version in packages.items():
        mine = package_paths(rootfs, package)
        kept = {r: s for r, s in pruned.kept.items() if r in mine}
        removed = {r: s for r, s in pruned.removed.items() if r in mine}
        modules = sorted({m for r in kept for m in pruned.users.get(r, ())})
        found.append(
            PackageCoverage(
                package, version, tuple(modules),
                len(kept), sum(kept.values()), len(removed), sum(removed.values()),
            )
        )  # fmt: skip
    return found


def module_dir(rootfs: Path, kernel_version: str) -> Path:
    merged = rootfs / "usr/lib/modules" / kernel_version
    return merged if merged.is_dir() else rootfs / "lib/modules" / kernel_version


def prune_image(ctx: BuildContext) -> None:
    """Stage bootfiles, after the module trees are dropped: prune lib/firmware to what
    the kept modules declare and log, per firmware package of the spec, what it covers."""
    fwdir = firmware_dir(ctx.rootfs)
    if fwdir is None or not any(fwdir.iterdir()):
        return
    try:
        refs = tree_refs(module_dir(ctx.rootfs, ctx.kernel_version))
    except ModuleError as err:
        ctx.log.write(f"WARNING: firmware not pruned: a module could not be read ({err})")
        return
    pruned = prune(fwdir, refs, ctx.kernel_version, owned_paths(ctx.rootfs))
    ctx.log.write(
        f"firmware: kept {len(pruned.kept)} files ({_mb(sum(pruned.kept.values()))}) for "
        f"{len({m for u in pruned.users.values() for m in u})} modules; dropped "
        f"{len(pruned.removed)} ({_mb(sum(pruned.removed.values()))}) no kept module declares"
    )
    wanted = ctx.spec.firmware_packages()
    if not wanted:
        return
    admindir = f"--admindir={ctx.rootfs / 'var/lib/dpkg'}"
    lines = ctx.query(["dpkg-query", admindir, "-W", "-f=${Package}\t${Version}\n"], "bootfiles")
    versions = dict(line.split("\t", 1) for line in lines if line.count("\t") == 1)
    for item in coverage(ctx.rootfs, pruned, {p: versions.get(p) for p in wanted}):
        ctx.log.write(item.describe())
        if not item.kept_files:
            ctx.log.write(f"WARNING: {item.package}: no module the image keeps loads its files")
