"""cli.spec_upload: what `settings set` sends, into a folder named by its content."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest

from livestrap.cli.spec_upload import upload_spec_files

pytestmark = [pytest.mark.unit, pytest.mark.security]


def run(base: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    sent: dict[str, bytes] = {}

    def put(name: str, body: Any, content_type: str) -> None:
        sent[name] = b"".join(body)

    upload_spec_files(spec, base, put)
    return spec, sent


def layout(base: Path, motd: str = "hi\n") -> None:
    (base / "overlay/root/.ssh").mkdir(parents=True)
    (base / "overlay/root/.ssh").chmod(0o700)
    (base / "overlay/etc").mkdir()
    (base / "overlay/etc/motd").write_text(motd)
    (base / "overlay/etc/localtime").symlink_to("/usr/share/zoneinfo/UTC")
    (base / "site.sh").write_text("#!/bin/sh\n")


def test_uploads_go_into_one_folder_named_by_their_content(tmp_path: Path) -> None:
    layout(tmp_path)
    spec = {"extra_dirs": ["overlay"], "scripts": ["./site.sh", "/srv/on-master.sh", "old.sh"]}
    out, sent = run(tmp_path, spec)
    folder = out["extra_dirs"][0].rsplit("/", 1)[0]
    assert folder.startswith("sets/") and len(folder) == len("sets/") + 16
    assert out["scripts"] == [f"{folder}/site.sh", "/srv/on-master.sh", "old.sh"]
    assert sorted(sent) == [f"{folder}/overlay", f"{folder}/site.sh"]
    os.utime(tmp_path / "overlay/etc/motd", (1, 1))  # saved again: same content, same folder
    assert run(tmp_path, {"extra_dirs": ["overlay"], "scripts": ["site.sh"]})[0] == {
        "extra_dirs": [f"{folder}/overlay"], "scripts": [f"{folder}/site.sh"]}  # fmt: skip
    (tmp_path / "overlay/root/.ssh").chmod(0o755)  # a mode is content too
    assert run(tmp_path, {"extra_dirs": ["overlay"]})[0]["extra_dirs"][0] != f"{folder}/overlay"


def test_the_tar_carries_modes_and_links_not_their_targets(tmp_path: Path) -> None:
    layout(tmp_path)
    _, sent = run(tmp_path, {"extra_dirs": ["overlay"]})
    with tarfile.open(fileobj=io.BytesIO(next(iter(sent.values())))) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["root/.ssh"].isdir() and members["root/.ssh"].mode == 0o700
    assert members["etc/localtime"].issym()
    assert members["etc/localtime"].linkname == "/usr/share/zoneinfo/UTC"
    assert {(m.mtime, m.uid, m.uname) for m in members.values()} == {(0, 0, "")}
