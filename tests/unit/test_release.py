"""release: the fields APT pins on, read from InRelease (clearsigned) and Release files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from livestrap.release import ANY, ReleaseFields, parse_release

pytestmark = pytest.mark.unit

# Shaped like Debian's security InRelease: armor header, the fields, checksum lists with
# continuation lines, a dash-escaped line, then the detached signature block.
INRELEASE = b"""-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

Origin: Debian
Label: Debian-Security
Suite: oldstable-security
Version: 12
Codename: bookworm-security
Date: Mon, 30 Nov 2026 00:22:33 UTC
Valid-Until: Mon, 07 Dec 2026 00:22:33 UTC
Acquire-By-Hash: yes
Architectures: amd64 arm64 armhf i386 ppc64el s390x
Components: updates/main updates/contrib
Description: Debian 12 - Security Updates
- -Dash-Escaped: kept
SHA256:
 0ec9b1c6fe2ae1e2e3d9e0c6b5d1b4a2c8a7b0e4f7c0d9e8a1b2c3d4e5f60718 123456 main/Packages
 Origin: not-a-field
-----BEGIN PGP SIGNATURE-----

iQIzBAEBCAAdFiEE0ZLbxL2/8Kqkc0m6h9A1uCPr7zsFAmdKRHkACgkQh9A1uCPr
7zuVtA//Q1FzBF0pJf3lY0mA0J5x8zXl
=AbCd
-----END PGP SIGNATURE-----
"""

RELEASE = b"""Origin: Acme Corp
Label: Acme Tools
Suite: product
Codename: product
Date: Tue, 01 Dec 2026 12:00:00 +0100
Architectures: amd64
Components: main
MD5Sum:
 d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages

Origin: a second paragraph is not read
"""


def test_inrelease_clearsigned() -> None:
    assert parse_release(INRELEASE) == ReleaseFields(
        origin="Debian",
        label="Debian-Security",
        suite="oldstable-security",
        codename="bookworm-security",
        date=datetime(2026, 11, 30, 0, 22, 33, tzinfo=UTC),
    )


def test_plain_release() -> None:
    fields = parse_release(RELEASE)
    assert (fields.origin, fields.label, fields.suite, fields.codename) == (
        "Acme Corp",
        "Acme Tools",
        "product",
        "product",
    )
    assert fields.date == datetime(2026, 12, 1, 11, 0, 0, tzinfo=UTC)


def test_clearsigned_and_plain_give_the_same_fields() -> None:
    signed = b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + RELEASE.split(b"\n\n")[0]
    signed += b"\n-----BEGIN PGP SIGNATURE-----\n\nxx\n-----END PGP SIGNATURE-----\n"
    assert parse_release(signed) == parse_release(RELEASE)


def test_missing_fields_and_a_bad_date_are_none() -> None:
    assert parse_release(b"Suite: local\nDate: yesterday\nLabel:\n") == ReleaseFields(
        None, None, "local", None, None
    )
    assert parse_release(b"") == ReleaseFields(None, None, None, None, None)


def test_a_date_without_zone_is_utc() -> None:
    date = parse_release(b"Date: Sat, 10 Jun 2023 08:53:33\n").date
    assert date == datetime(2023, 6, 10, 8, 53, 33, tzinfo=UTC)


def test_fields_are_read_as_apt_splits_lines() -> None:
    """Only a newline ends a line: a \\x1c (or \\u2028) inside a value smuggles in no field."""
    text = b"X-Note: a\x1cOrigin: Zed\nOrigin: Acme\nLabel: L\xe2\x80\xa8Suite: s\n"
    fields = parse_release(text)
    assert fields.origin == "Acme" and fields.suite is None


def test_a_field_given_twice_may_be_anything() -> None:
    assert parse_release(b"Origin: Acme\nOrigin: Zed\nLabel: L\n").origin == ANY
