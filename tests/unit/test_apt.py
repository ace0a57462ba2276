"""apt: key armoring, deb822 sources with embedded keys, and pinning (pure renderers)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest

from helpers import require_commands
from livestrap.apt import (
    ARMOR_BEGIN,
    ARMOR_END,
    AptSource,
    PinError,
    _crc24,
    armor_key,
    derive_pins,
    pin_conflicts,
    preferences_files,
    release_url,
    render_preferences,
    render_sources,
    spec_sources,
)
from livestrap.mirror import parse_deb822
from livestrap.release import ReleaseFields
from livestrap.resolve import DISTRO_DEFAULTS
from livestrap.spec import ResolvedSpec, parse_spec

pytestmark = pytest.mark.unit

KEYS = Path(__file__).resolve().parents[1] / "fixtures" / "keys"
ARCHIVE_KEY = KEYS / "archive-test.asc"
REPO_KEY = KEYS / "repo-test.asc"
DEBIAN = "http://mirror.example.test/debian"
UBUNTU = "http://ubuntu-mirror.example.test/ubuntu"


# -- an independent CRC-24 (RFC 4880 §6.1), table driven --------------------------------------


def _crc24_table() -> list[int]:
    table = []
    for i in range(256):
        crc = i << 16
        for _ in range(8):
            crc = ((crc << 1) ^ 0x864CFB) if crc & 0x800000 else (crc << 1)
        table.append(crc & 0xFFFFFF)
    return table


CRC24_TABLE = _crc24_table()


def reference_crc24(data: bytes) -> int:
    crc = 0xB704CE
    for byte in data:
        crc = ((crc << 8) & 0xFFFFFF) ^ CRC24_TABLE[((crc >> 16) ^ byte) & 0xFF]
    return crc


def test_reference_crc24_known_vectors() -> None:
    # CRC-24/OPENPGP check value from the CRC catalogue, and the initial value for b"".
    assert reference_crc24(b"123456789") == 0x21CF02
    assert reference_crc24(b"") == 0xB704CE
    assert _crc24(b"123456789") == 0x21CF02
    assert _crc24(b"") == 0xB704CE


# -- armor_key --------------------------------------------------------------------------------

# An old-format public key packet header (0x99, two length bytes) and a body: not a real key,
# but long enough for the base64 body to wrap at 64 columns.
BINARY_KEY = bytes([0x99, 0x00, 0x39]) + bytes(range(0x20, 0x59))


def test_armor_binary_key() -> None:
    armored = armor_key(BINARY_KEY)
    lines = armored.splitlines()
    body = base64.b64encode(BINARY_KEY).decode()
    assert len(body) == 80
    crc = reference_crc24(BINARY_KEY)
    assert lines == [
        ARMOR_BEGIN,
        "",
        body[:64],
        body[64:],
        "=" + base64.b64encode(crc.to_bytes(3, "big")).decode(),
        ARMOR_END,
    ]
    assert armored.endswith(f"{ARMOR_END}\n")
    assert base64.b64decode("".join(lines[2:4])) == BINARY_KEY


def test_armor_binary_key_crc_line_known_value() -> None:
    # computed once with reference_crc24 above; pinned so a change in either shows up
    assert reference_crc24(BINARY_KEY) == 0xC4BE7B
    assert armor_key(BINARY_KEY).splitlines()[-2] == "=xL57"


def test_armor_matches_gpg_export() -> None:
    """A real key exported by gpg, binary and --armor: armor_key reproduces gpg's block."""
    binary = (KEYS / "gpg-generated.gpg").read_bytes()
    assert armor_key(binary) == (KEYS / "gpg-generated.asc").read_text()


def test_gpg_dearmors_our_block(tmp_path: Path) -> None:
    """gpg checks the CRC-24 line when it dearmors; it must get the original bytes back."""
    require_commands("gpg")
    proc = subprocess.run(
        ["gpg", "--homedir", str(tmp_path), "--batch", "--dearmor"],
        input=armor_key(BINARY_KEY).encode(),
        capture_output=True,
        check=False,
        timeout=20,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == BINARY_KEY


def test_armor_of_armored_file_returns_just_the_block() -> None:
    block = ARCHIVE_KEY.read_text()
    assert armor_key(block.encode()) == block
    wrapped = f"\n  {block.rstrip()}\ntrailing text after the block\n"
    assert armor_key(wrapped.encode()) == block


def test_armor_of_armored_file_with_headers() -> None:
    text = (KEYS / "gpg-generated.asc").read_text()
    with_header = text.replace(f"{ARMOR_BEGIN}\n", f"{ARMOR_BEGIN}\nComment: test\n", 1)
    assert armor_key(with_header.encode()) == with_header


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"hello, not a key",
        b"\x00\x01\x02",
        b"-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n",
        b"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nabc\n-----END PGP PRIVATE KEY BLOCK-----\n",
    ],
)
def test_armor_rejects_non_key_data(data: bytes) -> None:
    with pytest.raises(ValueError):
        armor_key(data)


# -- render_sources ---------------------------------------------------------------------------


def resolved(data: dict[str, Any], mirror: str = DEBIAN) -> ResolvedSpec:
    """What resolve() makes of the spec with no host APT sources, but with its pins left
    unchecked (resolve() refuses conflicts: these tests look at them)."""
    spec = parse_spec({"mirror": mirror, "mirror_key": str(ARCHIVE_KEY), **data})
    defaults = {k: v for k, v in DISTRO_DEFAULTS[spec.distro].items() if k != "keyring"}
    filled = {"suites": [spec.suite or defaults["suite"]], "security": bool(spec.security_mirror)}
    return ResolvedSpec.model_validate({**defaults, **filled, **spec.model_dump(exclude_none=True)})


def read_key(path: str) -> bytes:
    return Path(path).read_bytes()


ARCHIVE_BLOCK = (
    " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    " .\n"
    " mQAabGl2ZXN0cmFwIHRlc3QgYXJjaGl2ZSBrZXk=\n"
    " =2EJB\n"
    " -----END PGP PUBLIC KEY BLOCK-----\n"
)
REPO_BLOCK = (
    " -----BEGIN PGP PUBLIC KEY BLOCK-----\n"
    " .\n"
    " mQAXbGl2ZXN0cmFwIHRlc3QgcmVwbyBrZXk=\n"
    " =3qzL\n"
    " -----END PGP PUBLIC KEY BLOCK-----\n"
)


def test_render_sources_debian_with_signed_and_trusted_repo() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "acme",
                    "uri": "http://acme.example.test/apt",
                    "suite": "stable",
                    "components": ["main", "extra"],
                    "key": str(REPO_KEY),
                },
                {"name": "local", "uri": "file:///srv/repo", "suite": "local", "trusted": True},
            ]
        }
    )
    assert render_sources(spec_sources(spec, read_key)) == (
        "# livestrap: distro\n"
        "Types: deb\n"
        "URIs: http://mirror.example.test/debian\n"
        "Suites: bookworm\n"
        "Components: main\n"
        "Signed-By:\n" + ARCHIVE_BLOCK + "\n"
        "# livestrap: acme\n"
        "Types: deb\n"
        "URIs: http://acme.example.test/apt\n"
        "Suites: stable\n"
        "Components: main extra\n"
        "Signed-By:\n" + REPO_BLOCK + "\n"
        "# livestrap: local\n"
        "Types: deb\n"
        "URIs: file:///srv/repo\n"
        "Suites: local\n"
        "Components: main\n"
        "Trusted: yes\n"
    )


def test_render_sources_ubuntu() -> None:
    spec = resolved({"distro": "ubuntu"}, mirror=UBUNTU)
    assert render_sources(spec_sources(spec, read_key)) == (
        "# livestrap: distro\n"
        "Types: deb\n"
        "URIs: http://ubuntu-mirror.example.test/ubuntu\n"
        "Suites: noble\n"
        "Components: main universe\n"
        "Signed-By:\n" + ARCHIVE_BLOCK
    )


def test_rendered_sources_parse_back_as_deb822() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "acme",
                    "uri": "http://acme.example.test/apt",
                    "suite": "s",
                    "key": str(REPO_KEY),
                }
            ]
        }
    )
    entries = parse_deb822(render_sources(spec_sources(spec, read_key)))
    assert [(e.uri, e.suites, e.components, e.signed_by) for e in entries] == [
        (DEBIAN, ("bookworm",), ("main",), None),
        ("http://acme.example.test/apt", ("s",), ("main",), None),
    ]


def test_repo_with_key_and_trusted_gets_the_key_only() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "acme",
                    "uri": "http://acme.example.test/apt",
                    "suite": "s",
                    "key": str(REPO_KEY),
                    "trusted": True,
                }
            ]
        }
    )
    acme = spec_sources(spec, read_key)[1]
    assert acme.key == REPO_KEY.read_text()
    assert acme.trusted is False
    assert "Trusted:" not in render_sources([acme])


def test_spec_sources_reads_keys_through_the_reader() -> None:
    spec = resolved({})
    seen: list[str] = []

    def reader(path: str) -> bytes:
        seen.append(path)
        return bytes([0x99, 0x00, 0x01, 0x41])

    [distro] = spec_sources(spec, reader)
    assert seen == [str(ARCHIVE_KEY)]
    assert distro.key == armor_key(bytes([0x99, 0x00, 0x01, 0x41]))


def test_render_sources_plain_source_without_key() -> None:
    source = AptSource("x", "http://x.example.test/a", ("a", "b"), ("main", "contrib"), None)
    assert render_sources([source]) == (
        "# livestrap: x\nTypes: deb\nURIs: http://x.example.test/a\nSuites: a b\n"
        "Components: main contrib\n"
    )
    assert render_sources([]) == ""


def test_render_sources_with_updates_and_security() -> None:
    spec = resolved(
        {
            "suites": ["bookworm", "bookworm-updates"],
            "security_mirror": "http://mirror.example.test/debian-security",
        }
    )
    assert render_sources(spec_sources(spec, read_key)) == (
        "# livestrap: distro\n"
        "Types: deb\n"
        "URIs: http://mirror.example.test/debian\n"
        "Suites: bookworm bookworm-updates\n"
        "Components: main\n"
        "Signed-By:\n" + ARCHIVE_BLOCK + "\n"
        "# livestrap: security\n"
        "Types: deb\n"
        "URIs: http://mirror.example.test/debian-security\n"
        "Suites: bookworm-security\n"
        "Components: main\n"
        "Signed-By:\n" + ARCHIVE_BLOCK
    )


# -- pinning ----------------------------------------------------------------------------------

TOOLS = "http://tools.example.test"
DEBIAN_FIELDS = ReleaseFields("Debian", "Debian", "oldstable", "bookworm", None)
SECURITY = "http://mirror.example.test/debian-security"


def repo(name: str, uri: str, suite: str = "stable", **fields: Any) -> dict[str, Any]:
    return {"name": name, "uri": uri, "suite": suite, "trusted": True, **fields}


def releases(spec: ResolvedSpec, **by_repo: ReleaseFields) -> dict[str, ReleaseFields]:
    """Release fields by InRelease URL: the distro's (Debian's) and the named repos'."""
    known = {release_url(spec.mirror, s): DEBIAN_FIELDS for s in spec.suites}
    if spec.security_mirror:
        known[release_url(spec.security_mirror, "bookworm-security")] = ReleaseFields(
            "Debian", "Debian-Security", "oldstable-security", "bookworm-security", None
        )
    for r in spec.repos:
        if r.name in by_repo:
            known[release_url(r.uri, r.suite)] = by_repo[r.name]
    return known


def fields(
    origin: str | None, label: str | None, suite: str, codename: str | None = None
) -> ReleaseFields:
    return ReleaseFields(origin, label, suite, codename, None)


def test_repo_alone_on_its_host_is_pinned_by_origin() -> None:
    spec = resolved(
        {
            "repos": [
                repo("acme", "http://acme.example.test/apt"),
                repo("o", "https://other.example.test/apt"),
            ]
        }
    )
    assert derive_pins(spec, releases(spec)) == {
        "acme": 'origin "acme.example.test"',
        "o": 'origin "other.example.test"',
    }


# The table: two repos on one host, what their release files say, the pins they get.
PIN_TABLE = [
    pytest.param(
        fields("Acme", "Acme", "stable", "stable"),
        fields("Beta", "Beta", "stable", "stable"),
        ("release o=Acme", "release o=Beta"),
        id="distinct-origin",
    ),
    pytest.param(
        fields("Acme", "Acme Tools", "stable"),
        fields("Acme", "Acme Extras", "stable"),
        ("release l=Acme Tools", "release l=Acme Extras"),
        id="same-origin-different-label",
    ),
    pytest.param(
        fields("Acme", "Acme", "stable", "one"),
        fields("Acme", "Acme", "testing", "two"),
        ("release a=stable", "release a=testing"),
        id="same-origin-and-label-different-suite",
    ),
    pytest.param(
        fields("Acme", "Acme", "stable", "one"),
        fields("Acme", "Acme", "stable", "two"),
        ("release n=one", "release n=two"),
        id="only-the-codename-differs",
    ),
    pytest.param(
        fields("Debian", "Acme", "bookworm", "bookworm"),
        fields("Acme", "Acme", "bookworm", "bookworm"),
        ("release o=Debian,l=Acme", "release o=Acme"),
        id="two-fields-combined-against-the-distro-too",
    ),
]


@pytest.mark.parametrize(("one", "two", "expected"), PIN_TABLE)
def test_shared_host_pins_from_the_release_files(
    one: ReleaseFields, two: ReleaseFields, expected: tuple[str, str]
) -> None:
    spec = resolved({"repos": [repo("a", f"{TOOLS}/a"), repo("b", f"{TOOLS}/b")]})
    pins = derive_pins(spec, releases(spec, a=one, b=two))
    assert (pins["a"], pins["b"]) == expected


def test_nothing_distinguishes_two_repos_names_both_and_the_fields() -> None:
    spec = resolved({"repos": [repo("a", f"{TOOLS}/a"), repo("b", f"{TOOLS}/b")]})
    same = fields("Acme", "Acme", "stable", "stable")
    with pytest.raises(PinError) as err:
        derive_pins(spec, releases(spec, a=same, b=same))
    assert str(err.value) == (
        "repo a (http://tools.example.test/a stable) and repo b (http://tools.example.test/b "
        "stable) cannot be told apart by their release files: compared o= origin, l= label, "
        "a= suite, n= codename (o=Acme, l=Acme, a=stable, n=stable against o=Acme, l=Acme, "
        "a=stable, n=stable); give repo a a `pin:`"
    )


def test_a_repo_like_the_distro_is_refused_unless_its_release_differs() -> None:
    overlay = repo("overlay", "http://mirror.example.test/overlay", "bookworm")
    spec = resolved({"repos": [overlay]})
    with pytest.raises(PinError, match=r"repo overlay .* and the distro mirror's bookworm"):
        derive_pins(spec, releases(spec, overlay=DEBIAN_FIELDS))
    own = fields("Overlay", "Overlay", "bookworm", "bookworm")
    assert derive_pins(spec, releases(spec, overlay=own)) == {"overlay": "release o=Overlay"}


def test_release_pins_are_held_against_the_security_repository() -> None:
    spec = resolved(
        {"security_mirror": SECURITY, "repos": [repo("x", "http://mirror.example.test/x", "x")]}
    )
    debianish = fields("Debian", "Debian-Security", "x", "x")
    assert derive_pins(spec, releases(spec, x=debianish)) == {"x": "release a=x"}
    # a repo on the security mirror's host is not alone there: no origin pin
    other = resolved(
        {
            "security_mirror": "http://sec.example.test/s",
            "repos": [repo("y", "http://sec.example.test/y", "y")],
        }
    )
    assert derive_pins(other, releases(other, y=fields("Y", None, "y")))["y"] == "release o=Y"


def test_release_pins_are_held_against_repos_on_other_hosts() -> None:
    spec = resolved(
        {
            "repos": [
                repo("a", f"{TOOLS}/a"),
                repo("b", f"{TOOLS}/b"),
                repo("c", "http://c.example.test/c"),
            ]
        }
    )
    known = releases(
        spec,
        a=fields("Acme", "Tools", "stable"),
        b=fields("Beta", "Tools", "stable"),
        c=fields("Acme", "Other", "stable"),
    )
    assert derive_pins(spec, known) == {
        "a": "release o=Acme,l=Tools",
        "b": "release o=Beta",
        "c": 'origin "c.example.test"',
    }


def test_values_apt_would_read_as_patterns_are_not_used() -> None:
    spec = resolved({"repos": [repo("a", f"{TOOLS}/a"), repo("b", f"{TOOLS}/b")]})
    known = releases(
        spec, a=fields("Ac*me", "A,B", "stable", "one"), b=fields("B", "B", "stable", "two")
    )
    assert derive_pins(spec, known)["a"] == "release n=one"


def test_unknown_release_files_pin_by_the_spec_suite() -> None:
    spec = resolved({"repos": [repo("a", f"{TOOLS}/a", "alpha"), repo("b", f"{TOOLS}/b", "beta")]})
    assert derive_pins(spec) == {"a": "release a=alpha", "b": "release a=beta"}
    local = resolved({"repos": [repo("local", "file:///srv/repo", "local")]})
    assert derive_pins(local) == {"local": "release a=local"}


def test_explicit_pin_wins() -> None:
    spec = resolved(
        {
            "repos": [
                repo("a", f"{TOOLS}/a", pin="release o=Tools,a=alpha"),
                repo("b", f"{TOOLS}/b", pin="release o=Tools,a=beta"),
                repo("u", "http://unique.example.test/u", pin="version 1.2*"),
            ]
        }
    )
    same = fields("Tools", "Tools", "stable")
    assert derive_pins(spec, releases(spec, a=same, b=same)) == {
        "a": "release o=Tools,a=alpha",
        "b": "release o=Tools,a=beta",
        "u": "version 1.2*",
    }


def test_render_preferences_exact() -> None:
    assert render_preferences("acme", 'origin "acme.example.test"', 700) == (
        '# livestrap: repo acme\nPackage: *\nPin: origin "acme.example.test"\nPin-Priority: 700\n'
    )


def test_preferences_files_exact() -> None:
    spec = resolved(
        {
            "repos": [
                repo("acme", "http://acme.example.test/apt", priority=900),
                repo("alpha", f"{TOOLS}/alpha", "product", priority=990),
                repo("beta", f"{TOOLS}/beta", "product", priority=100),
            ]
        }
    )
    known = releases(
        spec,
        acme=fields("Acme", "Acme", "stable", "stable"),
        alpha=fields("Alpha Corp", "Alpha", "product", "product"),
        beta=fields("Beta", "Beta", "product", "product"),
    )
    assert preferences_files(spec, known) == {
        "livestrap-acme.pref": "# livestrap: repo acme\nPackage: *\n"
        'Pin: origin "acme.example.test"\nPin-Priority: 900\n',
        "livestrap-alpha.pref": "# livestrap: repo alpha\nPackage: *\n"
        "Pin: release o=Alpha Corp\nPin-Priority: 990\n",
        "livestrap-beta.pref": "# livestrap: repo beta\nPackage: *\n"
        "Pin: release o=Beta\nPin-Priority: 100\n",
    }
    assert preferences_files(resolved({})) == {}


# -- what resolve() still refuses: what no release file can settle -----------------------------


def test_no_pin_conflicts_for_repos_the_release_files_can_settle() -> None:
    spec = resolved(
        {
            "repos": [
                repo("a", f"{TOOLS}/a"),
                repo("b", f"{TOOLS}/b"),
                repo("o", "http://mirror.example.test/overlay", "bookworm"),
            ]
        }
    )
    assert pin_conflicts(spec) == []
    assert pin_conflicts(resolved({})) == []


def test_pin_conflicts_the_same_repository_twice() -> None:
    spec = resolved(
        {
            "security_mirror": SECURITY,
            "repos": [
                repo("a", f"{TOOLS}/x"),
                repo("b", f"{TOOLS}/x"),
                repo("d", DEBIAN, "bookworm"),
                repo("s", SECURITY, "bookworm-security"),
            ],
        }
    )
    assert pin_conflicts(spec) == [
        "repos a, b share the pin: both are http://tools.example.test/x suite stable, "
        "the same repository; drop one",
        "repos the distro mirror, d share the pin: both are http://mirror.example.test/debian "
        "suite bookworm, the same repository; drop one",
        "repos the security repository, s share the pin: both are "
        "http://mirror.example.test/debian-security suite bookworm-security, the same "
        "repository; drop one",
    ]


def test_pin_conflicts_explicit_duplicate_pins() -> None:
    spec = resolved(
        {
            "repos": [
                repo("a", "http://a.example.test/a", "s", pin="release o=Same"),
                repo("b", "http://b.example.test/b", "s", pin="release o=Same"),
            ]
        }
    )
    assert pin_conflicts(spec) == [
        "repos a, b share the pin 'release o=Same'; give each a distinct `pin:`"
    ]
