"""The rootfs stage's incremental path: start from a kept tree, or keep the new one.

See builder.basetree for the tree cache, the base key and the apt delta; this module
decides which path a build takes and says why in the build log.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from livestrap.builder import basetree
from livestrap.builder.workspace import remove_tree
from livestrap.errors import CommandError

if TYPE_CHECKING:
    from livestrap.builder.pipeline import BuildContext


def start(ctx: BuildContext) -> bool:
    """True when the rootfs now stands on a kept tree with the delta applied; False
    (logged why) when a full build must make it."""
    if ctx.trees is None or ctx.base_key is None:
        ctx.log.write("rootfs: full build (upstream state unknown: no tree kept)")
        return False
    tree = None if ctx.force else ctx.trees.find(ctx.base_key)
    if tree is None:
        why = "--force" if ctx.force else "no kept tree has these base inputs"
        ctx.log.write(f"rootfs: full build ({why}; base inputs {ctx.base_key})")
        return False
    return _start_from(ctx, tree)


def keep(ctx: BuildContext) -> None:
    """Move the tree mmdebstrap made into the cache and overlay it where it was."""
    if ctx.trees is None or ctx.base_key is None:
        return
    if not ctx.keep_tree:
        ctx.log.write("rootfs: tree not kept (a check rebuild)")
        return
    t0 = time.monotonic()
    ctx.tree = ctx.trees.save(
        ctx.rootfs,
        ctx.base_key,
        ctx.spec.all_packages(),
        lambda src, dest: ctx.run(["cp", "-a", str(src), str(dest)], "rootfs"),
    )
    basetree.mount_over(ctx.tree, ctx.workdir, ctx.rootfs, lambda a: ctx.run(a, "rootfs"))
    ctx.log.write(f"rootfs: tree kept as {ctx.tree.entry} in {time.monotonic() - t0:.2f}s")


def _start_from(ctx: BuildContext, tree: basetree.Tree) -> bool:
    """Overlay the kept tree and apply the package delta; False (after undoing it) when
    apt fails or a purge would leave accounts behind: the caller makes a full build."""
    ctx.tree = tree
    basetree.mount_over(tree, ctx.workdir, ctx.rootfs, lambda a: ctx.run(a, "rootfs"))
    before = basetree.initrd_state(ctx.rootfs)
    try:
        added, removed = basetree.apply_delta(
            ctx.rootfs, ctx.spec, tree.packages, ctx.cache_dir, lambda a: ctx.run(a, "rootfs")
        )
    except CommandError as err:
        return _undo_start(ctx, tree, f"the package delta failed ({err})")
    gone = basetree.installed(tree.root) - basetree.installed(ctx.rootfs)
    makers = basetree.account_makers(tree.root, gone)
    if makers:
        why = f"{', '.join(makers)} made system accounts that a purge leaves behind"
        return _undo_start(ctx, tree, why)
    basetree.drop_run_state(tree.root, ctx.rootfs)
    ctx.base_tree = tree.key
    ctx.log.write(
        f"rootfs: incremental from kept tree {tree.key} (same base inputs; packages "
        f"added: {' '.join(added) or 'none'}; removed: {' '.join(removed) or 'none'})"
    )
    remade = basetree.initrd_state(ctx.rootfs) != before
    ctx.log.write(
        f"rootfs: initrd {'remade by apt (an initramfs input changed)' if remade else 'reused'}"
    )
    return True


def _undo_start(ctx: BuildContext, tree: basetree.Tree, why: str) -> bool:
    """Drop the overlay (the kept tree is untouched) so a full build can run instead."""
    ctx.log.write(f"rootfs: full build after all: {why}")
    for folder in (ctx.rootfs, ctx.workdir / "overlay-upper", ctx.workdir / "overlay-work"):
        remove_tree(folder)
    tree.release()
    ctx.tree = None
    return False
