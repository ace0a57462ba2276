"""The TFTP tree of the Secure Boot chain: what a TFTP server (dnsmasq's, or QEMU's) serves.

    shimx64.efi  grubx64.efi          Debian's signed shim and network GRUB (host packages)
    ipxe.efi  undionly.kpxe  undionly.0   Debian's iPXE, so one tftp-root serves both paths
    grub/grub.cfg                     rendered for the active image (netboot.grub)
    image/<id>/vmlinuz  initrd.img    the active image's, checked against its manifest

Debian 12's signed GRUB has no HTTP, so its kernel and initrd must be files here. Every
file is written beside its final name and renamed into place, and the new image's folder
is complete before grub.cfg names it: a node that boots during a rewrite gets the old
image or the new one, never half of one. Folders of other images go after the switch.
A copied boot file must hash to its manifest's sha256, or the tree keeps what it had.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.errors import LivestrapError
from livestrap.netboot.grub import CONFIG_PATH, IMAGES_FOLDER, image_dir

SHIM = "shimx64.efi"  # what DHCP names for the Secure Boot chain
STATE_FILE = ".livestrap-tree.json"  # what was written, so an unchanged tree costs a stat
CHUNK = 1 << 20


class TreeError(LivestrapError):
    """The tree cannot be written (a loader is missing, a copy does not match its hash)."""


@dataclass(frozen=True)
class Loaders:
    """Where the host's packages put the boot loaders (shim-signed, grub-efi-amd64-signed,
    ipxe); each is served under the name its predecessor in the chain asks for."""

    shim: Path = Path("/usr/lib/shim/shimx64.efi.signed")
    grub: Path = Path("/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed")
    ipxe_dir: Path = Path("/usr/lib/ipxe")

    def files(self) -> dict[str, Path]:
        # shim asks for grubx64.efi by that name; dnsmasq's pxe-service adds .0 for BIOS
        return {
            SHIM: self.shim,
            "grubx64.efi": self.grub,
            "ipxe.efi": self.ipxe_dir / "ipxe.efi",
            "undionly.kpxe": self.ipxe_dir / "undionly.kpxe",
            "undionly.0": self.ipxe_dir / "undionly.kpxe",
        }


@dataclass(frozen=True)
class BootFile:
    """One of the active image's files and the sha256 its manifest gives it."""

    name: str
    path: Path
    sha256: str


@dataclass(frozen=True)
class TreeContent:
    """Everything one tree holds: the GRUB config and the image it names (None: none)."""

    config: str
    image_id: str | None = None
    files: tuple[BootFile, ...] = ()
    loaders: Loaders = field(default_factory=Loaders)


def _source_key(path: Path) -> list[int]:
    try:
        st = path.stat()
    except OSError:
        raise TreeError(f"{path} is missing (install shim-signed, grub-efi-amd64-signed "
                        "and ipxe)") from None  # fmt: skip
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _copy_checked(src: Path, dest: Path, sha256: str | None = None) -> None:
    """Copy beside `dest`, check the hash on the way, rename into place (0644)."""
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        digest = hashlib.sha256()
        with src.open("rb") as fin, os.fdopen(fd, "wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise TreeError(f"{src} does not match its manifest's sha256: not serving it")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_text(dest: Path, text: str) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_state(root: Path) -> dict[str, object]:
    try:
        state = json.loads((root / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def write_tree(root: Path, content: TreeContent) -> list[str]:
    """Bring the tree at `root` to `content`; the paths written (empty: it already was)."""
    root.mkdir(parents=True, exist_ok=True, mode=0o755)
    old = _read_state(root)
    written: list[str] = []
    loaders: dict[str, list[int]] = {}
    old_loaders = old.get("loaders")
    old_loaders = old_loaders if isinstance(old_loaders, Mapping) else {}
    for name, src in content.loaders.files().items():
        loaders[name] = _source_key(src)
        if old_loaders.get(name) != loaders[name] or not (root / name).is_file():
            _copy_checked(src, root / name)
            written.append(name)
    image = {f.name: f.sha256 for f in content.files}
    if content.image_id is not None:
        folder = image_dir(content.image_id)
        same = old.get("image_id") == content.image_id and old.get("image") == image
        for f in content.files:
            if not same or not (root / folder / f.name).is_file():
                _copy_checked(f.path, root / folder / f.name, f.sha256)
                written.append(f"{folder}/{f.name}")
    config_sha = hashlib.sha256(content.config.encode()).hexdigest()
    if old.get("config_sha256") != config_sha or not (root / CONFIG_PATH).is_file():
        _write_text(root / CONFIG_PATH, content.config)
        written.append(CONFIG_PATH)
    _drop_other_images(root, content.image_id)
    if written:
        state = {"image_id": content.image_id, "image": image, "config_sha256": config_sha,
                 "loaders": loaders}  # fmt: skip
        _write_text(root / STATE_FILE, json.dumps(state, indent=1) + "\n")
    return written


def _drop_other_images(root: Path, keep: str | None) -> None:
    images = root / IMAGES_FOLDER
    if not images.is_dir():
        return
    for entry in images.iterdir():
        if entry.name != keep and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name != keep:
            entry.unlink()
