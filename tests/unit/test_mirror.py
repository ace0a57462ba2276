"""mirror: the host's APT sources (one-line and deb822) and the distro mirror found in them.

Every host name here is made up (`*.example.test`): no real mirror is named in the repo.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.mirror import (
    SourceEntry,
    find_distro_source,
    host_sources,
    parse_deb822,
    parse_oneline,
)

pytestmark = pytest.mark.unit

APT = Path(__file__).resolve().parents[1] / "fixtures" / "apt"
DEBIAN = "http://mirror.example.test/debian"
UBUNTU = "http://ubuntu-mirror.example.test/ubuntu/"


def summary(entries: list[SourceEntry]) -> list[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return [(e.uri, e.suites, e.components) for e in entries]


# -- one-line format ---------------------------------------------------------------------


def test_oneline_options_in_brackets() -> None:
    text = (
        f"deb [arch=amd64 signed-by=/usr/share/keyrings/test.gpg] {DEBIAN} bookworm main contrib\n"
    )
    [entry] = parse_oneline(text, "sources.list")
    assert entry == SourceEntry(
        uri=DEBIAN,
        suites=("bookworm",),
        components=("main", "contrib"),
        signed_by="/usr/share/keyrings/test.gpg",
        origin_file="sources.list",
    )
    assert entry.options == {"arch": "amd64", "signed-by": "/usr/share/keyrings/test.gpg"}


def test_oneline_without_options() -> None:
    [entry] = parse_oneline(f"deb {DEBIAN} bookworm main\n")
    assert entry.signed_by is None
    assert entry.options == {}
    assert (entry.uri, entry.suites, entry.components) == (DEBIAN, ("bookworm",), ("main",))


def test_oneline_comments_blank_lines_and_deb_src_are_skipped() -> None:
    text = "\n".join(
        [
            "# a comment line",
            f"#deb {DEBIAN} bullseye main",
            "",
            "   ",
            f"deb-src {DEBIAN} bookworm main",
            f"deb-src [signed-by=/k.gpg] {DEBIAN} bookworm main",
            f"deb {DEBIAN} bookworm main  # trailing comment",
            f"   deb {DEBIAN} bookworm-updates main",
        ]
    )
    assert summary(parse_oneline(text)) == [
        (DEBIAN, ("bookworm",), ("main",)),
        (DEBIAN, ("bookworm-updates",), ("main",)),
    ]


def test_oneline_incomplete_and_foreign_lines_are_skipped() -> None:
    text = f"deb {DEBIAN}\ndebx {DEBIAN} bookworm main\nrpm {DEBIAN} bookworm main\n"
    assert parse_oneline(text) == []


def test_oneline_flat_repo_without_components() -> None:
    [entry] = parse_oneline("deb [trusted=yes] file:///srv/repo ./\n")
    assert entry.suites == ("./",)
    assert entry.components == ()
    assert entry.options == {"trusted": "yes"}


def test_oneline_fixture_file() -> None:
    path = APT / "debian-oneline/etc/apt/sources.list"
    entries = parse_oneline(path.read_text(), str(path))
    assert summary(entries) == [
        ("http://security-mirror.example.test/debian-security", ("bookworm-security",), ("main",)),
        (DEBIAN, ("bookworm",), ("main", "contrib", "non-free-firmware")),
        (DEBIAN, ("bookworm-updates",), ("main",)),
    ]
    assert entries[1].signed_by == "/usr/share/keyrings/livestrap-test-debian.gpg"
    assert {e.origin_file for e in entries} == {str(path)}


# -- deb822 format -----------------------------------------------------------------------

DEB822 = """\
# leading comment
Types: deb deb-src
URIs: http://mirror.example.test/debian
  http://mirror2.example.test/debian
Suites: bookworm
 bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/test.gpg

Types: deb-src
URIs: http://src.example.test/debian
Suites: bookworm
Components: main

# a disabled stanza
Enabled: no
Types: deb
URIs: http://disabled.example.test/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://embedded.example.test/debian
Suites: trixie
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQAXbGl2ZXN0cmFwIHRlc3QgcmVwbyBrZXk=
 -----END PGP PUBLIC KEY BLOCK-----

types: deb
uris: http://lower.example.test/debian
suites: sid
components: main
enabled: YES
"""


def test_deb822_stanzas() -> None:
    entries = parse_deb822(DEB822, "x.sources")
    assert summary(entries) == [
        (DEBIAN, ("bookworm", "bookworm-updates"), ("main", "contrib")),
        (
            "http://mirror2.example.test/debian",
            ("bookworm", "bookworm-updates"),
            ("main", "contrib"),
        ),
        ("http://embedded.example.test/debian", ("trixie",), ("main",)),
        ("http://lower.example.test/debian", ("sid",), ("main",)),
    ]
    assert [e.signed_by for e in entries] == [
        "/usr/share/keyrings/test.gpg",
        "/usr/share/keyrings/test.gpg",
        None,  # an embedded key block is not a file path
        None,
    ]
    assert {e.origin_file for e in entries} == {"x.sources"}


def test_deb822_enabled_no_is_skipped_case_insensitively() -> None:
    text = f"Types: deb\nURIs: {DEBIAN}\nSuites: bookworm\nComponents: main\nEnabled: No\n"
    assert parse_deb822(text) == []


def test_deb822_deb_src_only_is_skipped() -> None:
    text = f"Types: deb-src\nURIs: {DEBIAN}\nSuites: bookworm\nComponents: main\n"
    assert parse_deb822(text) == []


def test_deb822_stanzas_separated_by_several_blank_lines() -> None:
    text = (
        f"Types: deb\nURIs: {DEBIAN}\nSuites: a\nComponents: main\n\n\n\n"
        f"Types: deb\nURIs: {DEBIAN}\nSuites: b\nComponents: main\n"
    )
    assert [e.suites for e in parse_deb822(text)] == [("a",), ("b",)]


def test_deb822_empty_text() -> None:
    assert parse_deb822("") == []
    assert parse_deb822("# only a comment\n\n") == []


# -- host_sources --------------------------------------------------------------------------


def test_host_sources_reading_order_and_ignored_files() -> None:
    root = APT / "ordering"
    entries = host_sources(root)
    assert summary(entries) == [
        (DEBIAN, ("bookworm",), ("main",)),  # sources.list first
        ("file:///srv/local-repo", ("local",), ("main",)),  # then 10-local.sources
        ("http://tools.example.test/apt", ("stable",), ("main",)),  # then 20-tools.list
    ]
    assert [Path(e.origin_file).name for e in entries] == [
        "sources.list",
        "10-local.sources",
        "20-tools.list",
    ]
    # 05-cloud.list.disabled-by-farm, 07-old.sources.save and README are not read
    assert not any("cloud" in e.uri or "old" in e.uri or "readme" in e.uri for e in entries)


def test_host_sources_sorts_sources_list_d(tmp_path: Path) -> None:
    d = tmp_path / "etc/apt/sources.list.d"
    d.mkdir(parents=True)
    for name in ("b.list", "a.sources", "c.list", "a.list"):
        suite = name.replace(".", "-")
        if name.endswith(".list"):
            (d / name).write_text(f"deb {DEBIAN} {suite} main\n")
        else:
            (d / name).write_text(f"Types: deb\nURIs: {DEBIAN}\nSuites: {suite}\n")
    (d / "dir.list").mkdir()  # a directory is not a sources file
    assert [e.suites[0] for e in host_sources(tmp_path)] == [
        "a-list",
        "a-sources",
        "b-list",
        "c-list",
    ]


def test_host_sources_without_apt_config(tmp_path: Path) -> None:
    assert host_sources(tmp_path) == []


def test_host_sources_deb822_fixture() -> None:
    assert summary(host_sources(APT / "debian-deb822")) == [
        (DEBIAN, ("bookworm", "bookworm-updates"), ("main", "non-free-firmware")),
        (
            "http://security-mirror.example.test/debian-security",
            ("bookworm-security",),
            ("main", "non-free-firmware"),
        ),
    ]


# -- distro detection and find_distro_source ------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "signed_by", "distro"),
    [
        (DEBIAN, None, "debian"),
        ("http://mirror.example.test/debian-security", None, "debian"),
        (UBUNTU, None, "ubuntu"),
        ("https://ubuntu-mirror.example.test/pub/Ubuntu/archive", None, "ubuntu"),
        # the host name is not looked at, only the path and the keyring
        ("http://debian.example.test/pub/archive", None, None),
        (
            "http://mirror.example.test/pub/archive",
            "/usr/share/keyrings/debian-archive.gpg",
            "debian",
        ),
        ("http://mirror.example.test/pub", "/usr/share/keyrings/ubuntu-archive.gpg", "ubuntu"),
        ("http://tools.example.test/apt", "/etc/apt/keyrings/tools.asc", None),
    ],
)
def test_distro_detection(uri: str, signed_by: str | None, distro: str | None) -> None:
    assert SourceEntry(uri=uri, suites=("x",), components=(), signed_by=signed_by).distro == distro


def test_find_distro_source_skips_updates_and_security_lines() -> None:
    found = find_distro_source(host_sources(APT / "debian-oneline"), "debian")
    assert found == SourceEntry(
        uri=DEBIAN,
        suites=("bookworm",),
        components=("main", "contrib", "non-free-firmware"),
        signed_by="/usr/share/keyrings/livestrap-test-debian.gpg",
        origin_file=str(APT / "debian-oneline/etc/apt/sources.list"),
    )


def test_find_distro_source_keeps_only_base_suites_of_a_stanza() -> None:
    found = find_distro_source(host_sources(APT / "debian-deb822"), "debian")
    assert found is not None
    assert (found.uri, found.suites) == (DEBIAN, ("bookworm",))


def test_find_distro_source_ubuntu() -> None:
    entries = host_sources(APT / "ubuntu-noble")
    found = find_distro_source(entries, "ubuntu")
    assert found is not None
    assert found.uri == UBUNTU
    assert found.suites == ("noble",)  # not noble-updates (listed first) or noble-backports
    assert found.components == ("main", "restricted", "universe", "multiverse")
    assert found.signed_by == "/usr/share/keyrings/livestrap-test-ubuntu.gpg"
    assert find_distro_source(entries, "debian") is None


def test_find_distro_source_none_for_other_distro_or_no_base_suite() -> None:
    assert find_distro_source(host_sources(APT / "debian-oneline"), "ubuntu") is None
    only_updates = parse_oneline(
        f"deb {DEBIAN} bookworm-updates main\n"
        f"deb {DEBIAN} bookworm/updates main\n"
        "deb http://nodistro.example.test/debian nodistro main\n"
    )
    assert find_distro_source(only_updates, "debian") is None
    assert find_distro_source([], "debian") is None


def test_find_distro_source_ignores_third_party_repo_with_distro_in_path() -> None:
    found = find_distro_source(host_sources(APT / "third-party-first"), "debian")
    assert found is not None
    assert found.uri == DEBIAN
