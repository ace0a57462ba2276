"""master.specfiles: URL paths into spec/, and a hostile tar unpacked (or refused) safely."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from livestrap.errors import ConflictError, SpecError
from livestrap.master import specfiles
from livestrap.master.specfiles import SpecFileError

pytestmark = [pytest.mark.unit, pytest.mark.security]


def make_tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def reg(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = mode
    return info, data


def special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, None


def test_a_tree_is_unpacked(tmp_path: Path) -> None:
    tar = make_tar(
        special("etc", tarfile.DIRTYPE),
        reg("etc/motd", b"hello\n"),
        reg("usr/local/bin/tool", b"#!/bin/sh\n", 0o4755),
        special("etc/issue", tarfile.SYMTYPE, "motd"),
        special("usr/local/bin/up", tarfile.SYMTYPE, "../../../etc/motd"),
    )
    assert specfiles.unpack_tree(tar, tmp_path) == 5
    assert (tmp_path / "etc/motd").read_bytes() == b"hello\n"
    assert (tmp_path / "usr/local/bin/tool").stat().st_mode & 0o7777 == 0o755  # no setuid
    assert (tmp_path / "etc/issue").readlink() == Path("motd")


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (reg("../evil"), "climbs out"),
        (reg("a/../../evil"), "climbs out"),
        (reg("/etc/evil"), "absolute"),
        (special("link", tarfile.SYMTYPE, "/etc/shadow"), "outside the tree"),
        (special("a/link", tarfile.SYMTYPE, "../../etc"), "outside the tree"),
        (special("hard", tarfile.LNKTYPE, "etc/motd"), "hard link, device or fifo"),
        (special("dev", tarfile.CHRTYPE), "hard link, device or fifo"),
        (special("fifo", tarfile.FIFOTYPE), "hard link, device or fifo"),
    ],
)
def test_unsafe_members_are_refused(
    tmp_path: Path, member: tuple[tarfile.TarInfo, bytes | None], reason: str
) -> None:
    with pytest.raises(SpecError, match=reason):
        specfiles.unpack_tree(make_tar(member), tmp_path / "tree")
    assert not (tmp_path / "evil").exists()


def test_nothing_is_written_through_a_link(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "tree"
    root.mkdir()
    tar = make_tar(special("d", tarfile.SYMTYPE, "."), reg("d/x"))  # a link inside, then through
    with pytest.raises(SpecError, match="goes through a link"):
        specfiles.unpack_tree(tar, root)
    tar = make_tar(reg("f", b"one"), reg("f", b"two"))
    with pytest.raises(SpecError, match="appears twice"):
        specfiles.unpack_tree(tar, tmp_path / "tree2")


def test_member_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(specfiles, "MAX_TREE_MEMBERS", 3)
    tar = make_tar(*(reg(f"f{i}") for i in range(4)))
    with pytest.raises(SpecError, match="more than 3 members"):
        specfiles.unpack_tree(tar, tmp_path)


def test_not_a_tar(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a readable plain tar"):
        specfiles.unpack_tree(io.BytesIO(b"\x28\xb5\x2f\xfd" + b"x" * 600), tmp_path)


@pytest.mark.parametrize("rel", ["", "/", "..", "a/../b", "a/./b", "a b", "a?b", "%2e%2e", "a\nb"])
def test_url_paths_are_plain_names(tmp_path: Path, rel: str) -> None:
    with pytest.raises(SpecError, match="not a path in the spec folder"):
        specfiles.spec_path(tmp_path, rel)


def test_url_paths_do_not_go_through_links(tmp_path: Path) -> None:
    (tmp_path / "keys").symlink_to("/etc")
    assert specfiles.spec_path(tmp_path, "overlay/.ssh/x") == tmp_path / "overlay/.ssh/x"
    with pytest.raises(SpecError, match="symbolic link"):
        specfiles.spec_path(tmp_path, "keys/shadow")
    with pytest.raises(SpecError, match="symbolic link"):
        specfiles.spec_path(tmp_path, "keys")


def test_place_replaces_a_tree_and_refuses_a_file_over_a_folder(tmp_path: Path) -> None:
    spec = tmp_path / "spec"
    (spec / "overlay/old").mkdir(parents=True)
    staging = specfiles.new_staging(spec)
    (staging / "tree/new").mkdir(parents=True)
    specfiles.place(staging / "tree", spec / "overlay")
    assert (spec / "overlay/new").is_dir() and not (spec / "overlay/old").exists()
    (staging / "body").write_text("x")
    with pytest.raises(ConflictError):
        specfiles.place(staging / "body", spec / "overlay")
    assert staging.parent == tmp_path / "tmp" and staging.name.startswith("upload-")


def test_oversized_pax_header_is_refused_before_tarfile(tmp_path: Path) -> None:
    """CVE-2024-6232: a huge pax header never reaches tarfile's header parser."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a")
        info.pax_headers = {"comment": "x" * (160 << 10)}
        tar.addfile(info, io.BytesIO(b""))
    buf.seek(0)
    with pytest.raises(SpecFileError, match="header"):
        specfiles.unpack_tree(buf, tmp_path / "tree")
