"""The Secure Boot TFTP tree: complete before grub.cfg names an image, hash-checked,
old images dropped, nothing rewritten when nothing changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from livestrap.netboot.tftptree import BootFile, Loaders, TreeContent, TreeError, write_tree

pytestmark = pytest.mark.unit


def _loaders(tmp_path: Path) -> Loaders:
    src = tmp_path / "pkgs"
    (src / "ipxe").mkdir(parents=True, exist_ok=True)
    for name in ("shim", "grub", "ipxe/ipxe.efi", "ipxe/undionly.kpxe"):
        (src / name).write_bytes(f"binary {name}".encode())
    return Loaders(shim=src / "shim", grub=src / "grub", ipxe_dir=src / "ipxe")


def _image(
    tmp_path: Path, image_id: str, sha: str | None = None, loaders: Loaders | None = None
) -> TreeContent:
    folder = tmp_path / "store" / image_id
    folder.mkdir(parents=True)
    files = []
    for name in ("vmlinuz", "initrd.img"):
        (folder / name).write_bytes(f"{image_id} {name}".encode())
        digest = sha or hashlib.sha256((folder / name).read_bytes()).hexdigest()
        files.append(BootFile(name, folder / name, digest))
    loaders = loaders or _loaders(tmp_path)
    return TreeContent(f"config of {image_id}\n", image_id, tuple(files), loaders)


def test_tree_layout_and_no_rewrite_when_unchanged(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    content = _image(tmp_path, "img-1")
    written = write_tree(root, content)
    assert sorted(written) == sorted([
        "shimx64.efi", "grubx64.efi", "ipxe.efi", "undionly.kpxe", "undionly.0",
        "image/img-1/vmlinuz", "image/img-1/initrd.img", "grub/grub.cfg",
    ])  # fmt: skip
    assert (root / "grubx64.efi").read_bytes() == b"binary grub"
    assert (root / "grub/grub.cfg").read_text() == "config of img-1\n"
    assert (root / "image/img-1/vmlinuz").stat().st_mode & 0o777 == 0o644
    assert write_tree(root, content) == []


def test_new_image_replaces_the_old_one(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    first = _image(tmp_path, "img-1")
    write_tree(root, first)
    written = write_tree(root, _image(tmp_path, "img-2", loaders=first.loaders))
    assert sorted(written) == ["grub/grub.cfg", "image/img-2/initrd.img", "image/img-2/vmlinuz"]
    assert [p.name for p in (root / "image").iterdir()] == ["img-2"]
    assert (root / "grub/grub.cfg").read_text() == "config of img-2\n"


def test_a_file_that_does_not_match_its_manifest_is_never_served(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    first = _image(tmp_path, "img-1")
    write_tree(root, first)
    with pytest.raises(TreeError, match="sha256"):
        write_tree(root, _image(tmp_path, "img-2", sha="0" * 64, loaders=first.loaders))
    assert (root / "grub/grub.cfg").read_text() == "config of img-1\n"  # still the old one
    assert not (root / "image/img-2/vmlinuz").exists()
    assert [p.name for p in (root / "image/img-2").iterdir()] == []  # no temp files left


def test_no_image(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    write_tree(root, _image(tmp_path, "img-1"))
    write_tree(root, TreeContent("nothing\n", loaders=_loaders(tmp_path)))
    assert list((root / "image").iterdir()) == []
    assert (root / "grub/grub.cfg").read_text() == "nothing\n"


def test_missing_loader_says_which_package(tmp_path: Path) -> None:
    loaders = Loaders(shim=tmp_path / "nope", grub=tmp_path / "nope2", ipxe_dir=tmp_path)
    with pytest.raises(TreeError, match="shim-signed"):
        write_tree(tmp_path / "tree", TreeContent("x\n", loaders=loaders))


def test_updated_loader_is_copied_again(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    content = _image(tmp_path, "img-1")
    write_tree(root, content)
    content.loaders.shim.write_bytes(b"shim, a newer version")
    assert write_tree(root, content) == ["shimx64.efi"]
    assert (root / "shimx64.efi").read_bytes() == b"shim, a newer version"
