"""master.specfiles: URL paths into spec/, and a hostile tar unpacked (or refused) safely."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi import Response

from livestrap.errors import ConflictError, SpecError
from livestrap.master import specfiles
from livestrap.master.routes import specfiles as route
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
        (special("link", tarfile.SYMTYPE, ""), "empty or overlong link target"),
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


def test_an_overlay_with_absolute_and_climbing_links_is_taken(tmp_path: Path) -> None:
    """What a normal overlay carries: links are stored as links, whatever they point at."""
    root = tmp_path / "tree"
    tar = make_tar(
        special("etc/localtime", tarfile.SYMTYPE, "/usr/share/zoneinfo/UTC"),
        special(WANTS + "/x.service", tarfile.SYMTYPE, "/lib/systemd/system/x.service"),
        special("a/b/up", tarfile.SYMTYPE, "../.."),
        special("a/b/up2", tarfile.SYMTYPE, "up/.."),
    )
    assert specfiles.unpack_tree(tar, root) == 4
    assert (root / "etc/localtime").readlink() == Path("/usr/share/zoneinfo/UTC")
    assert (root / WANTS / "x.service").readlink() == Path("/lib/systemd/system/x.service")
    assert (root / "a/b/up2").readlink() == Path("up/..")


WANTS = "etc/systemd/system/multi-user.target.wants"


@pytest.mark.parametrize(
    "links",
    [
        [("etc", "OUT")],  # absolute, then a member through it
        [("a", "OUT/")],
        [("a/b/up", "../.."), ("a/b/up2", "up/../../outside")],  # a chain that leaves
        [("a", "."), ("a/b", "OUT")],
    ],
)
def test_no_member_is_written_through_any_link(
    tmp_path: Path, links: list[tuple[str, str]]
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    members = [special(n, tarfile.SYMTYPE, t.replace("OUT", str(outside))) for n, t in links]
    last = links[-1][0]
    for through in (reg(f"{last}/x"), special(f"{last}/d", tarfile.DIRTYPE),
                    special(f"{last}/l", tarfile.SYMTYPE, "/")):  # fmt: skip
        root = tmp_path / f"tree-{through[0].name.replace('/', '_')}"
        with pytest.raises(SpecError, match=r"goes through a link|appears twice"):
            specfiles.unpack_tree(make_tar(*members, through), root)
        assert list(outside.iterdir()) == []


def test_file_and_folder_modes_are_kept(tmp_path: Path) -> None:
    """An overlay's /root/.ssh stays 0700 and its key 0600, whatever the master's umask."""
    root = tmp_path / "tree"
    tar = make_tar(*(_with_mode(m, mode) for m, mode in [
        (special("root", tarfile.DIRTYPE), 0o700),
        (special("root/.ssh", tarfile.DIRTYPE), 0o700),
        (reg("root/.ssh/authorized_keys", b"k\n"), 0o600),
        (reg("usr/local/bin/tool", b"#!/bin/sh\n"), 0o6755),
        (special("srv/ro", tarfile.DIRTYPE), 0o555),
        (reg("srv/ro/file", b"x"), 0o644),
        (special("srv/ro/sub", tarfile.DIRTYPE), 0o2750),
        (special("tmp", tarfile.DIRTYPE), 0o1777),
    ]))  # fmt: skip
    old = os.umask(0o077)
    try:
        specfiles.unpack_tree(tar, root)
    finally:
        os.umask(old)

    def mode(rel: str) -> int:
        return (root / rel).lstat().st_mode & 0o7777

    assert mode(".") == 0o755
    assert (mode("root"), mode("root/.ssh"), mode("root/.ssh/authorized_keys")) == (
        0o700, 0o700, 0o600)  # fmt: skip
    assert mode("usr/local/bin/tool") == 0o755  # no setuid/setgid
    assert (mode("usr"), mode("usr/local/bin")) == (0o755, 0o755)  # only named as parents
    assert (mode("srv/ro"), mode("srv/ro/file"), mode("srv/ro/sub")) == (0o555, 0o644, 0o750)
    assert mode("tmp") == 0o1777


def _with_mode(
    member: tuple[tarfile.TarInfo, bytes | None], mode: int
) -> tuple[tarfile.TarInfo, bytes | None]:
    member[0].mode = mode
    return member


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


def test_a_long_member_name_is_a_refusal_not_a_crash(tmp_path: Path) -> None:
    """Review: a 300-character name made unpack_tree raise ENAMETOOLONG (a 500)."""
    long = "a" * 300
    with pytest.raises(SpecFileError, match=r"tar member 'etc/a{74}.*longer than 255 bytes"):
        specfiles.unpack_tree(make_tar(reg(f"etc/{long}")), tmp_path / "tree")
    with pytest.raises(SpecFileError, match="not a path in the spec folder"):
        specfiles.spec_path(tmp_path, "/".join(["a" * 200] * 6))  # 1205 characters


@pytest.mark.parametrize(
    ("code", "refused"), [(errno.EACCES, True), (errno.ENOSPC, False), (errno.EDQUOT, False)]
)
def test_extraction_errors_name_the_member_but_a_full_disk_stays_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int, refused: bool
) -> None:
    """Any other OSError while unpacking is the tree's refusal (422) naming the member,
    bounded and printable; ENOSPC/EDQUOT propagate, for the app's 507."""

    def fail(*_: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(shutil, "copyfileobj", fail)
    name = "etc/\x1b[31m" + "b" * 200
    tar = make_tar(reg(name))
    if refused:
        with pytest.raises(SpecFileError) as exc:
            specfiles.unpack_tree(tar, tmp_path / "tree")
        assert str(exc.value) == (
            f"tar member {name[:80]!r} cannot be unpacked: {os.strerror(code)}"
        )
        assert "\x1b" not in str(exc.value) and len(str(exc.value)) < 200
    else:
        with pytest.raises(OSError) as raw:
            specfiles.unpack_tree(tar, tmp_path / "tree")
        assert raw.value.errno == code and not isinstance(raw.value, SpecError)


def test_listing_under_a_prefix_and_bounded(tmp_path: Path) -> None:
    (tmp_path / "sets/abc/overlay/etc").mkdir(parents=True)
    (tmp_path / "sets/abc/overlay/etc/motd").write_text("hi\n")
    (tmp_path / "sets/abd").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "key.asc").write_text("k")
    top = specfiles.spec_path(tmp_path, "sets/abc")
    rows, cut = specfiles.listing(tmp_path, top)
    assert not cut and [(r["path"], r["type"]) for r in rows] == [
        ("sets/abc", "dir"),
        ("sets/abc/overlay", "dir"),
        ("sets/abc/overlay/etc", "dir"),
        ("sets/abc/overlay/etc/motd", "file"),
    ]
    assert specfiles.listing(tmp_path, tmp_path / "sets/none") == ([], False)
    assert specfiles.listing(tmp_path, tmp_path / "key.asc") == (
        [{"path": "key.asc", "type": "file", "size": 1}], False)  # fmt: skip
    rows, cut = specfiles.listing(tmp_path, limit=3)
    assert cut and len(rows) == 3
    rows, cut = specfiles.listing(tmp_path)
    assert not cut and len(rows) == 8


def test_two_uploads_of_the_same_new_tree_both_land(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review: two PUTs of one new path; the second os.replace met the first's tree
    (ENOTEMPTY, a 500). Both threads reach the swap together unless place() serializes."""
    spec = tmp_path / "spec"
    spec.mkdir()
    real_replace = os.replace
    meet = threading.Barrier(2, timeout=1)

    def replace(src: Any, dst: Any) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            meet.wait()  # the old code: both here at once; with the lock: a timeout
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    stagings = []
    for n in range(2):
        staging = specfiles.new_staging(spec)
        (staging / f"tree/from-{n}").mkdir(parents=True)
        stagings.append(staging)
    errors: list[BaseException] = []

    def upload(staging: Path) -> None:
        try:
            specfiles.place(staging / "tree", spec / "sets/h/overlay")
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=upload, args=(s,)) for s in stagings]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(list((spec / "sets/h/overlay").iterdir())) == 1  # one of them, whole


def test_a_place_raced_by_another_process_is_retried_then_a_conflict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = tmp_path / "spec"
    spec.mkdir()
    real_replace = os.replace
    races = {"left": 1}

    def replace(src: Any, dst: Any) -> None:
        if races["left"]:  # another master made it first
            races["left"] -= 1
            Path(dst, "theirs").mkdir(parents=True)
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    staging = specfiles.new_staging(spec)
    (staging / "tree/mine").mkdir(parents=True)
    specfiles.place(staging / "tree", spec / "overlay")  # retried once: in place
    assert [p.name for p in (spec / "overlay").iterdir()] == ["mine"]
    races["left"] = 5
    (staging / "tree2/again").mkdir(parents=True)
    with pytest.raises(ConflictError, match="changed by another upload"):
        specfiles.place(staging / "tree2", spec / "other")


def test_the_route_says_when_its_listing_was_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for n in range(3):
        (tmp_path / f"f{n}").write_text("x")
    monkeypatch.setattr(specfiles, "MAX_LIST_ENTRIES", 2)
    state: Any = SimpleNamespace(settings=SimpleNamespace(spec_dir=tmp_path))
    response = Response()
    assert [r["path"] for r in route.list_files(state, response)] == ["f0", "f1"]
    assert response.headers[route.TRUNCATED].startswith("cut at 2 entries")
    response = Response()
    assert [r["path"] for r in route.list_files(state, response, prefix="f2")] == ["f2"]
    assert route.TRUNCATED not in response.headers
