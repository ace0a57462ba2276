"""master.tftp_sync: the tree follows the store's active image, however it was activated,
and a failure is logged once, not every few seconds."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pytest
from store_helpers import add_image, artifact_bytes, store_fixture  # noqa: F401

from livestrap.master.tftp_sync import TreeSync
from livestrap.netboot.tftptree import Loaders
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit


@dataclass
class Tokens:
    """What TreeSync reads the discovery token from each round (the app's state)."""

    discovery_token: str = "tok"


def _loaders(tmp_path: Path) -> Loaders:
    src = tmp_path / "pkgs"
    (src / "ipxe").mkdir(parents=True)
    for name in ("shim", "grub", "ipxe/ipxe.efi", "ipxe/undionly.kpxe"):
        (src / name).write_bytes(name.encode())
    return Loaders(shim=src / "shim", grub=src / "grub", ipxe_dir=src / "ipxe")


def test_tree_follows_activation(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loaders = _loaders(tmp_path)
    monkeypatch.setattr("livestrap.master.tftp_sync.Loaders", lambda: loaders)
    tree = tmp_path / "tree"
    tokens = Tokens()
    sync = TreeSync(tree, store, "http://10.0.0.1:8080", tokens, 30)
    assert "grub/grub.cfg" in sync()
    assert "no active image" in (tree / "grub/grub.cfg").read_text()
    for image_id in ("img-1", "img-2"):
        add_image(store, image_id)
    store.activate("img-1")
    assert sorted(sync())[:2] == ["grub/grub.cfg", "image/img-1/initrd.img"]
    config = (tree / "grub/grub.cfg").read_text()
    assert "linux /image/img-1/vmlinuz " in config and "livestrap.token=tok " in config
    assert (tree / "image/img-1/vmlinuz").read_bytes() == artifact_bytes("img-1")["vmlinuz"]
    assert sync() == []  # nothing changed: nothing written
    store.activate("img-2")
    assert "image/img-2/vmlinuz" in sync()
    assert [p.name for p in (tree / "image").iterdir()] == ["img-2"]
    tokens.discovery_token = "new"  # replaced on the data dir (master.token_watch)
    assert sync() == ["grub/grub.cfg"]
    assert "livestrap.token=new " in (tree / "grub/grub.cfg").read_text()


def test_a_tampered_file_is_not_served_and_logged_once(
    store: ImageStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    loaders = _loaders(tmp_path)
    monkeypatch.setattr("livestrap.master.tftp_sync.Loaders", lambda: loaders)
    add_image(store, "img-1")
    store.activate("img-1")
    (store.path("img-1") / "initrd.img").write_bytes(b"not what the manifest says")
    sync = TreeSync(tmp_path / "tree", store, "http://10.0.0.1:8080", Tokens(), 30)
    with caplog.at_level(logging.ERROR, logger="livestrap.master.tftp_sync"):
        assert sync() == [] and sync() == []
    assert len(caplog.records) == 1 and "sha256" in caplog.records[0].getMessage()
    assert not (tmp_path / "tree/grub/grub.cfg").exists()
