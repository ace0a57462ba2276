"""Keep the Secure Boot chain's TFTP tree in step with the active image.

An image can be activated by the API, the console or `livestrap images activate` on the
master's data dir without the master hearing of it, so the tree is compared with the
store every few seconds (the guards' periodic upkeep) instead of on an event: unchanged,
that costs one readlink and one stat of the state file. `livestrap netboot tftp-tree`
writes the same tree once, for a TFTP server on another host.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from livestrap import bootpaths
from livestrap.errors import LivestrapError
from livestrap.master.artifacts import image_metadata
from livestrap.netboot.grub import render_grub_config, render_grub_no_image
from livestrap.netboot.tftptree import BootFile, Loaders, TreeContent, write_tree
from livestrap.store.images import ImageStore

log = logging.getLogger(__name__)


class HasToken(Protocol):
    discovery_token: str


UNUSABLE = "the active image on the master is unusable (see the master's log)"


def tree_content(
    store: ImageStore, base_url: str, token: str, retry_s: int, loaders: Loaders | None = None
) -> TreeContent:
    """What the tree must hold now: the active image's kernel, initrd and GRUB config."""
    loaders = loaders or Loaders()
    image_id = store.active_id()
    if image_id is None:
        return TreeContent(render_grub_no_image(retry_s), loaders=loaders)
    meta = image_metadata(store, image_id)
    if meta.boot_problems:
        log.error("not booting image %s: %s", image_id, "; ".join(meta.boot_problems))
        return TreeContent(render_grub_no_image(retry_s, UNUSABLE), loaders=loaders)
    folder = store.path(image_id)
    files = tuple(
        BootFile(name, folder / name, meta.artifacts[name].sha256)
        for name in (bootpaths.KERNEL, bootpaths.INITRD)
    )
    config = render_grub_config(base_url, image_id, token, meta.kernel_cmdline, retry_s=retry_s)
    return TreeContent(config, image_id, files, loaders)


class TreeSync:
    """The periodic task: rewrite what changed, log what it wrote, and failures once each."""

    def __init__(
        self, root: Path, store: ImageStore, base_url: str, tokens: HasToken, retry_s: int
    ) -> None:
        self.root, self.store, self.base_url = root, store, base_url
        self.tokens, self.retry_s = tokens, retry_s  # the token as of each round (TokenWatch)
        self._last_error: str | None = None

    def __call__(self) -> list[str]:
        try:
            token = self.tokens.discovery_token
            content = tree_content(self.store, self.base_url, token, self.retry_s)
            written = write_tree(self.root, content)
        except (LivestrapError, ValueError, OSError) as err:
            if str(err) != self._last_error:
                log.error("TFTP tree %s not updated: %s", self.root, err)
            self._last_error = str(err)
            return []
        self._last_error = None
        if written:
            log.info("TFTP tree %s: wrote %s (image %s)", self.root, ", ".join(written),
                     content.image_id or "none")  # fmt: skip
        return written
