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
    _crc24,
    armor_key,
    derive_pin,
    pin_conflicts,
    preferences_files,
    render_preferences,
    render_sources,
    spec_sources,
)
from livestrap.mirror import parse_deb822
from livestrap.resolve import DISTRO_DEFAULTS
from livestrap.spec import Repo, ResolvedSpec, parse_spec

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
    return ResolvedSpec.model_validate({**defaults, **spec.model_dump(exclude_none=True)})


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


# -- pinning ----------------------------------------------------------------------------------


def make_repo(name: str, uri: str, suite: str = "stable", **fields: Any) -> Repo:
    return Repo(name=name, uri=uri, suite=suite, trusted=True, **fields)


def test_derive_pin_unique_host_is_origin() -> None:
    acme = make_repo("acme", "http://acme.example.test/apt")
    other = make_repo("other", "https://other.example.test/apt")
    assert derive_pin(acme, [acme, other], DEBIAN) == 'origin "acme.example.test"'


def test_derive_pin_host_shared_with_another_repo_is_release() -> None:
    a = make_repo("a", "http://tools.example.test/a", suite="alpha")
    b = make_repo("b", "http://tools.example.test:8080/b", suite="beta")
    assert derive_pin(a, [a, b], DEBIAN) == "release a=alpha"
    assert derive_pin(b, [a, b], DEBIAN) == "release a=beta"


def test_derive_pin_host_shared_with_the_mirror_is_release() -> None:
    backports = make_repo("bpo", "http://mirror.example.test/debian", suite="bookworm-backports")
    assert derive_pin(backports, [backports], DEBIAN) == "release a=bookworm-backports"


def test_derive_pin_file_repo_is_release() -> None:
    local = make_repo("local", "file:///srv/repo", suite="local")
    assert derive_pin(local, [local], DEBIAN) == "release a=local"


def test_derive_pin_explicit_pin_wins() -> None:
    a = make_repo("a", "http://tools.example.test/a", pin="release o=Tools,a=alpha")
    b = make_repo("b", "http://tools.example.test/b")
    unique = make_repo("u", "http://unique.example.test/u", pin="version 1.2*")
    assert derive_pin(a, [a, b], DEBIAN) == "release o=Tools,a=alpha"
    assert derive_pin(unique, [unique], DEBIAN) == "version 1.2*"


def test_render_preferences_exact() -> None:
    assert render_preferences("acme", 'origin "acme.example.test"', 700) == (
        '# livestrap: repo acme\nPackage: *\nPin: origin "acme.example.test"\nPin-Priority: 700\n'
    )


def pinned_spec() -> ResolvedSpec:
    return resolved(
        {
            "repos": [
                {
                    "name": "acme",
                    "uri": "http://acme.example.test/apt",
                    "suite": "stable",
                    "trusted": True,
                    "priority": 900,
                },
                {
                    "name": "tools-a",
                    "uri": "http://tools.example.test/a",
                    "suite": "alpha",
                    "trusted": True,
                },
                {
                    "name": "tools-b",
                    "uri": "http://tools.example.test/b",
                    "suite": "beta",
                    "trusted": True,
                    "priority": 100,
                },
            ]
        }
    )


def test_preferences_files() -> None:
    files = preferences_files(pinned_spec())
    assert list(files) == [
        "livestrap-acme.pref",
        "livestrap-tools-a.pref",
        "livestrap-tools-b.pref",
    ]
    assert files["livestrap-acme.pref"] == render_preferences(
        "acme", 'origin "acme.example.test"', 900
    )
    assert files["livestrap-tools-a.pref"] == render_preferences("tools-a", "release a=alpha", 500)
    assert files["livestrap-tools-b.pref"] == render_preferences("tools-b", "release a=beta", 100)
    assert preferences_files(resolved({})) == {}


def test_no_pin_conflicts() -> None:
    assert pin_conflicts(pinned_spec()) == []
    assert pin_conflicts(resolved({})) == []


def test_pin_conflicts_same_host_same_suite() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "a",
                    "uri": "http://tools.example.test/a",
                    "suite": "stable",
                    "trusted": True,
                },
                {
                    "name": "b",
                    "uri": "http://tools.example.test/b",
                    "suite": "stable",
                    "trusted": True,
                },
                {
                    "name": "c",
                    "uri": "http://other.example.test/c",
                    "suite": "stable",
                    "trusted": True,
                },
            ]
        }
    )
    assert pin_conflicts(spec) == [
        "repos a, b share the pin 'release a=stable'; give each a distinct `pin:`"
    ]


def test_pin_conflicts_resolved_by_explicit_pins() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "a",
                    "uri": "http://tools.example.test/a",
                    "suite": "stable",
                    "trusted": True,
                    "pin": "release o=A",
                },
                {
                    "name": "b",
                    "uri": "http://tools.example.test/b",
                    "suite": "stable",
                    "trusted": True,
                    "pin": "release o=B",
                },
            ]
        }
    )
    assert pin_conflicts(spec) == []


def test_pin_conflicts_explicit_duplicate_pins() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "a",
                    "uri": "http://a.example.test/a",
                    "suite": "s",
                    "trusted": True,
                    "pin": "release o=Same",
                },
                {
                    "name": "b",
                    "uri": "http://b.example.test/b",
                    "suite": "s",
                    "trusted": True,
                    "pin": "release o=Same",
                },
            ]
        }
    )
    assert pin_conflicts(spec) == [
        "repos a, b share the pin 'release o=Same'; give each a distinct `pin:`"
    ]


def test_pin_conflicts_repo_pin_that_matches_the_distro() -> None:
    spec = resolved(
        {
            "repos": [
                {
                    "name": "overlay",
                    "uri": "http://mirror.example.test/overlay",
                    "suite": "bookworm",
                    "trusted": True,
                    "priority": 990,
                }
            ]
        }
    )
    assert preferences_files(spec)["livestrap-overlay.pref"].count("Pin: release a=bookworm")
    assert pin_conflicts(spec) != []
