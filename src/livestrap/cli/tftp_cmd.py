"""`livestrap netboot tftp-tree`: write the Secure Boot chain's TFTP tree once.

`livestrap serve --tftp-dir` keeps the same tree in step with the active image; this is
for a TFTP server on another host (copy the folder there after each activation), and for
virtual nodes, whose TFTP server is QEMU's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from livestrap.cli.options import DEFAULT_DATA_DIR, DataDir
from livestrap.datadir import DataDir as DataDirLayout
from livestrap.errors import OptionError
from livestrap.master.config_load import load_settings
from livestrap.master.ipxe import check_base_url
from livestrap.master.tftp_sync import tree_content
from livestrap.master.tokens import ensure_token
from livestrap.netboot.tftptree import TreeContent, write_tree
from livestrap.store.images import ImageStore


def write_local_tree(data_dir: Path, directory: Path, base: str) -> tuple[TreeContent, list[str]]:
    """The tree for the active image of the data dir, nodes reaching the master at `base`."""
    layout = DataDirLayout(data_dir)
    token, _ = ensure_token(layout.discovery_token)  # the one the master makes at its start
    retry_s = load_settings({"data_dir": data_dir}).boot_retry_s
    content = tree_content(ImageStore(data_dir), base, token, retry_s)
    return content, write_tree(directory, content)


def tftp_tree(
    directory: Annotated[Path, typer.Argument(help="Folder to write (the TFTP root).")],
    boot_url: Annotated[
        str,
        typer.Option("--boot-url", help="URL nodes reach the master at, e.g. http://MASTER:8080."),
    ],
    data_dir: DataDir = DEFAULT_DATA_DIR,
) -> None:
    """Write the Secure Boot TFTP tree: Debian's signed shim and network GRUB, a grub.cfg
    for the active image, its kernel and initrd (checked by sha256), and Debian's iPXE."""
    try:
        base = check_base_url(boot_url)
    except ValueError as err:
        raise OptionError(f"--boot-url: {err}") from None
    content, written = write_local_tree(data_dir, directory, base)
    what = f"image {content.image_id}" if content.image_id else "no active image"
    typer.echo(f"{directory}: {what}; wrote {len(written)} file(s)")
