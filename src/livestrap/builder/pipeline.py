"""build(): a flat list of named stages, run in order, with progress events and one log.

Each stage is a function of the BuildContext. A failure or an interrupt in any stage
ends the build; the workspace is then removed (after its mounts are swept), so nothing
half-written reaches the store: images appear there only by one atomic rename.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.apt import PinError, preferences_files, render_sources, spec_sources
from livestrap.builder import (
    aptlists,
    basetree,
    bootfiles,
    customize,
    fingerprint,
    firmware,
    incremental,
    initramfs,
    livenet,
    noderepo,
    reproducible,
    rootfs,
    sbom,
    slim,
    squashfs,
)
from livestrap.builder.events import BuildEvent, EventSink, discard
from livestrap.builder.finish import stage_commit, stage_guards, stage_metadata, stage_sbom
from livestrap.builder.workspace import BUILD_PREFIX, build_lock, remove_tree
from livestrap.datadir import CacheDir
from livestrap.errors import BuildCancelled, BuildError, CommandError
from livestrap.release import parse_release
from livestrap.run import BuildLog, query, run
from livestrap.spec import ResolvedSpec, spec_warnings
from livestrap.store import tmpdirs
from livestrap.store.images import ImageStore
from livestrap.store.manifest import (
    ImageMetadata,
)


@dataclass
class BuildContext:
    """Everything the stages share; facts found on the way are filled in as they go."""

    spec: ResolvedSpec
    store: ImageStore
    log: BuildLog
    workdir: Path
    cache_dir: Path
    cancel: threading.Event | None = None
    force: bool = False
    image_id: str = ""
    inputs_sha256: str | None = None
    reused: ImageMetadata | None = None
    kernel_version: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    boot_ram_mb: int | None = None
    releases: dict[str, bytes] = field(default_factory=dict)  # InRelease URL -> its bytes
    source_date_epoch: int | None = None
    built: ImageMetadata | None = None
    # package version -> the APT archive it came from, read before customize clears the lists
    archives: dict[aptlists.Key, sbom.Archive] = field(default_factory=dict)
    trees: basetree.TreeCache | None = None  # None: no tree kept or started from
    base_key: str | None = None  # None when upstream is unknown: always a full build
    tree: basetree.Tree | None = None  # the kept tree the rootfs is an overlay of
    base_tree: str | None = None  # its key, when this build started from it
    keep_tree: bool = True  # False: a check rebuild, which evicts no kept tree

    @property
    def rootfs(self) -> Path:
        return self.workdir / "rootfs"

    @property
    def out(self) -> Path:
        return self.workdir / "image"

    def run(self, argv: list[str], stage: str, env: dict[str, str] | None = None) -> list[str]:
        """`env` None: the build's own (SOURCE_DATE_EPOCH, see builder.reproducible)."""
        if env is None:
            env = reproducible.build_env(self.source_date_epoch)
        return run(argv, stage=stage, log=self.log.write, cancel=self.cancel, env=env)

    def query(self, argv: list[str], stage: str) -> list[str]:
        return query(argv, stage=stage, log=self.log.write)


Stage = Callable[[BuildContext], None]


def stage_prepare(ctx: BuildContext) -> None:
    """Fetch the sources' release files, render sources, pinning (derived from those
    files) and the initramfs config; no package is downloaded yet."""
    apt_sources = spec_sources(ctx.spec, lambda p: Path(p).read_bytes())
    fetched = fingerprint.fetch_releases(apt_sources)
    ctx.releases = fetched or {}
    config = ctx.workdir / "config"
    prefs = config / "etc/apt/preferences.d"
    prefs.mkdir(parents=True)
    fields = {url: parse_release(data) for url, data in ctx.releases.items()}
    try:
        preferences = preferences_files(ctx.spec, fields)
    except PinError as err:
        raise BuildError("prepare", str(err)) from None
    for name, text in preferences.items():
        (prefs / name).write_text(text)
        ctx.log.write(f"pin {name}: {text.splitlines()[2]}")
    conf_d = config / "etc/initramfs-tools/conf.d"
    conf_d.mkdir(parents=True)
    (conf_d / "livestrap.conf").write_text(initramfs.INITRAMFS_CONF)
    hook = config / "etc/initramfs-tools/hooks/livestrap-slim"
    hook.parent.mkdir(parents=True)
    hook.write_text(initramfs.render_slim_hook())
    hook.chmod(0o755)
    (config / livenet.HOOK).write_text(livenet.render_hook())
    (config / livenet.HOOK).chmod(0o755)
    sources = render_sources(apt_sources)
    (ctx.workdir / "livestrap.sources").write_text(sources)
    if fetched is None:
        ctx.log.write("upstream state unknown (a release file could not be fetched; pins by suite)")
    else:
        ctx.source_date_epoch = reproducible.source_date_epoch(fetched)
        ctx.log.write(f"SOURCE_DATE_EPOCH={ctx.source_date_epoch} (newest release file Date)")
        upstream = fingerprint.release_hashes(fetched)
        ctx.inputs_sha256 = fingerprint.inputs_sha256(ctx.spec, upstream)
        ctx.base_key = basetree.base_key(ctx.spec, upstream)
        ctx.log.write(f"build inputs: {ctx.inputs_sha256}")
        if not ctx.force:
            ctx.reused = _image_with_inputs(ctx.store, ctx.inputs_sha256)
    ctx.out.mkdir()
    ctx.cache_dir.mkdir(parents=True, exist_ok=True)
    ctx.log.write(f"sources:\n{sources}")
    for warning in spec_warnings(ctx.spec):
        ctx.log.write(f"WARNING: {warning}")


def _image_with_inputs(store: ImageStore, inputs: str) -> ImageMetadata | None:
    """A stored image built from exactly these inputs, if there is one."""
    for info in reversed(store.list()):
        meta = store.get(info.id)
        if meta.inputs_sha256 == inputs and not meta.stored_problems:
            return meta
    return None


def stage_rootfs(ctx: BuildContext) -> None:
    """From a kept tree of the same base inputs when there is one (builder.incremental),
    else mmdebstrap; a tree mmdebstrap made is kept before customize touches it."""
    if not incremental.start(ctx):
        _mmdebstrap(ctx)
        incremental.keep(ctx)


def _mmdebstrap(ctx: BuildContext) -> None:
    missing_file = ctx.workdir / "missing-packages"
    argv = rootfs.mmdebstrap_argv(
        suite=ctx.spec.suite,
        rootfs=ctx.rootfs,
        sources_file=ctx.workdir / "livestrap.sources",
        packages=ctx.spec.all_packages(),
        cache_dir=ctx.cache_dir,
        config_dir=ctx.workdir / "config",
        missing_file=missing_file,
    )
    try:
        ctx.run(rootfs.private_ns(argv), "rootfs")
    except CommandError:
        missing = rootfs.read_missing(missing_file)
        if missing:
            raise rootfs.missing_packages_error(missing) from None
        raise


def stage_customize(ctx: BuildContext) -> None:
    """Extra dirs, root access, scripts, then per-machine state and caches removed."""
    ctx.archives = aptlists.spec_archives(ctx.rootfs, ctx.spec)  # before clean_image
    ctx.log.write(f"apt lists: {len(ctx.archives)} package versions in the sources")
    customize.copy_extra_dirs(ctx.rootfs, ctx.spec.extra_dirs)
    customize.write_root_access(ctx.rootfs, ctx.spec)
    kept = noderepo.write_image_repo(ctx.rootfs, ctx.spec, lambda p: Path(p).read_bytes())
    ctx.log.write(f"master repository kept for the agent: {', '.join(kept) or 'none'}")
    ctx.log.write(f"masked units: {', '.join(customize.mask_units(ctx.rootfs)) or 'none'}")
    customize.run_scripts(
        ctx.rootfs,
        ctx.spec.scripts,
        lambda command: ctx.run(customize.chroot_argv(ctx.rootfs, command), "customize"),
    )
    customize.clean_image(ctx.rootfs)


def stage_bootfiles(ctx: BuildContext) -> None:
    """Copy out kernel + initramfs, check the initramfs, then slim the module tree and
    the firmware to what the kept modules declare."""
    ctx.kernel_version = bootfiles.find_kernel(ctx.rootfs)
    bootfiles.copy_boot_files(ctx.rootfs, ctx.kernel_version, ctx.out)
    listing = ctx.query(["lsinitramfs", str(ctx.out / "initrd.img")], "bootfiles")
    ctx.log.write(f"initramfs holds {len(listing)} files")
    problems = bootfiles.initramfs_problems(
        listing, bootfiles.kernel_config(ctx.rootfs, ctx.kernel_version)
    )
    if problems:
        raise BuildError("bootfiles", f"initramfs lacks what fetch= needs: {', '.join(problems)}")
    dropped = slim.drop_module_trees(ctx.rootfs, ctx.kernel_version)
    if dropped:  # usually none: dpkg never unpacked them (slim.dpkg_excludes)
        ctx.log.write(f"dropped module trees: {', '.join(dropped)}")
        ctx.run(["depmod", "-b", str(ctx.rootfs), ctx.kernel_version], "bootfiles")
    firmware.prune_image(ctx)


def stage_squashfs(ctx: BuildContext) -> None:
    argv = squashfs.mksquashfs_argv(
        ctx.rootfs, ctx.out / "root.squashfs", ctx.spec.compression, epoch=ctx.source_date_epoch
    )
    ctx.run(argv, "squashfs", env={})  # its flags say the time; it refuses both


STAGES: list[tuple[str, Stage]] = [
    ("prepare", stage_prepare),
    ("rootfs", stage_rootfs),
    ("customize", stage_customize),
    ("bootfiles", stage_bootfiles),
    ("squashfs", stage_squashfs),
    ("guards", stage_guards),
    ("sbom", stage_sbom),
    ("metadata", stage_metadata),
    ("commit", stage_commit),
]


def build(
    spec: ResolvedSpec,
    store: ImageStore,
    *,
    log_path: Path,
    events: EventSink = discard,
    cancel: threading.Event | None = None,
    stages: list[tuple[str, Stage]] | None = None,
    cache_dir: Path | None = None,
    force: bool = False,
    keep_tree: bool = True,
) -> ImageMetadata:
    """Build a resolved spec (see livestrap.builder.plan) into the store; returns the new
    image's metadata.

    `cache_dir` holds downloaded packages across builds (default: <data-dir>/cache).
    When a stored image was built from the same inputs (spec, files, builder and
    upstream release files) it is returned instead, unless `force`. `keep_tree` False
    keeps no root tree for later incremental builds (a check rebuild).
    """
    if not isinstance(spec, ResolvedSpec):  # defaults, pins and the agent repo come first
        raise TypeError(f"build() takes a ResolvedSpec, not {type(spec).__name__}")
    log = BuildLog(log_path)
    started = time.monotonic()
    events(BuildEvent("build-start", message=str(log_path)))
    current = "prepare"
    try:
        with build_lock(store.data_dir):
            for stale in store.clean_stale_tmp((tmpdirs.BUILD,), eraser=remove_tree):
                log.write(f"removed stale build tree {store.tmp_dir / stale}")
            workdir = store.new_staging_dir(BUILD_PREFIX)  # makes tmp/ (0700) if need be
            ctx = BuildContext(
                spec=spec,
                store=store,
                log=log,
                workdir=workdir,
                cache_dir=CacheDir(cache_dir or store.layout.cache).apt_archives,
                cancel=cancel,
                force=force,
                keep_tree=keep_tree,
                trees=basetree.TreeCache(CacheDir(cache_dir or store.layout.cache).base_trees),
            )
            try:
                for current, stage in stages or STAGES:
                    t0 = time.monotonic()
                    events(BuildEvent("stage-start", current, time.monotonic() - started))
                    log.write(f"=== stage {current}")
                    stage(ctx)
                    last = current == (stages or STAGES)[-1][0]
                    if cancel is not None and cancel.is_set() and not last:
                        raise BuildCancelled(current, "cancel requested")
                    done = round(time.monotonic() - t0, 1)
                    events(
                        BuildEvent(
                            "stage-done",
                            current,
                            time.monotonic() - started,
                            data={"stage_s": done},
                        )
                    )
                    if ctx.reused is not None:
                        break
            finally:
                remove_tree(workdir)  # unmounts the overlay before the tree under it is let go
                if ctx.tree is not None:
                    ctx.tree.release()
    except KeyboardInterrupt:
        err: BuildError = BuildCancelled(current, "interrupted")
        _fail(log, events, err, started)
        raise err from None
    except BuildError as exc:
        _fail(log, events, exc, started)
        raise
    except Exception as exc:
        err = BuildError(current, f"{type(exc).__name__}: {exc}")
        _fail(log, events, err, started)
        raise err from exc
    if ctx.reused is not None:
        meta = ctx.reused
        log.write(f"=== nothing changed since image {meta.id}: reused it (--force rebuilds)")
    else:
        meta = ctx.built or store.get(ctx.image_id)  # a --check build commits nothing
        log.write(f"=== built image {meta.id} in {time.monotonic() - started:.1f}s")
    log.close()
    events(
        BuildEvent(
            "build-done",
            None,
            time.monotonic() - started,
            meta.id,
            data={"image_id": meta.id, "log": str(log_path), "reused": ctx.reused is not None},
        )
    )
    return meta


def _fail(log: BuildLog, events: EventSink, err: BuildError, started: float) -> None:
    log.write(f"=== build failed: {err}")
    log.close()
    events(
        BuildEvent(
            "build-failed",
            err.stage,
            time.monotonic() - started,
            str(err),
            data={"log_tail": err.log_tail},
        )
    )
