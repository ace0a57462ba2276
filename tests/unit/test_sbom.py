"""The SBOM renderer (exact bytes, purl escaping, hostile names as data) and the
reading of apt's lists that tells which archive each package came from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livestrap.apt import AptSource
from livestrap.builder import aptlists
from livestrap.builder.sbom import Archive, Package, Subject, purl, render_sbom

pytestmark = pytest.mark.unit

DEBIAN = Archive("http://mirror.example/debian", "bookworm", "main", "Debian", "Debian")
SUBJECT = Subject("rack42", "debian", "bookworm", "6.1.0-28-amd64", "0.1.0")
ZLIB = Package("zlib1g", "1:1.2.13.dfsg-1+b1~x", "amd64", "zlib", "1:1.2.13.dfsg-1", DEBIAN)

EXPECTED = """\
{
  "bomFormat": "CycloneDX",
  "specVersion": "1.5",
  "serialNumber": "urn:uuid:7bae8795-b812-5241-ba8a-3f7622566726",
  "version": 1,
  "metadata": {
    "timestamp": "2023-11-14T22:13:20Z",
    "tools": {
      "components": [
        {
          "type": "application",
          "name": "livestrap",
          "version": "0.1.0"
        }
      ]
    },
    "component": {
      "type": "operating-system",
      "name": "rack42",
      "version": "6.1.0-28-amd64",
      "properties": [
        {
          "name": "livestrap:distro",
          "value": "debian"
        },
        {
          "name": "livestrap:suite",
          "value": "bookworm"
        }
      ]
    }
  },
  "components": [
    {
      "type": "application",
      "bom-ref": "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1%2Bb1~x?arch=amd64&distro=bookworm",
      "name": "zlib1g",
      "version": "1:1.2.13.dfsg-1+b1~x",
      "purl": "pkg:deb/debian/zlib1g@1%3A1.2.13.dfsg-1%2Bb1~x?arch=amd64&distro=bookworm",
      "properties": [
        {
          "name": "livestrap:source",
          "value": "zlib"
        },
        {
          "name": "livestrap:source_version",
          "value": "1:1.2.13.dfsg-1"
        },
        {
          "name": "livestrap:archive:uri",
          "value": "http://mirror.example/debian"
        },
        {
          "name": "livestrap:archive:suite",
          "value": "bookworm"
        },
        {
          "name": "livestrap:archive:component",
          "value": "main"
        },
        {
          "name": "livestrap:archive:origin",
          "value": "Debian"
        },
        {
          "name": "livestrap:archive:label",
          "value": "Debian"
        }
      ]
    }
  ]
}
"""


def test_render_exact() -> None:
    assert render_sbom(SUBJECT, [ZLIB], 1700000000) == EXPECTED


def test_reproducible_sorted_and_serial_from_content() -> None:
    other = Package("bash", "5.2.15-2+b8", "amd64", "bash", "5.2.15-2", None)
    one = render_sbom(SUBJECT, [ZLIB, other], 1700000000)
    assert one == render_sbom(SUBJECT, [other, ZLIB], 1700000000)
    doc = json.loads(one)
    assert [c["name"] for c in doc["components"]] == ["bash", "zlib1g"]
    assert "livestrap:archive:uri" not in {p["name"] for p in doc["components"][0]["properties"]}
    changed = json.loads(render_sbom(SUBJECT, [ZLIB], 1700000001))
    assert changed["serialNumber"] != json.loads(EXPECTED)["serialNumber"]


def test_no_timestamp_without_source_date_epoch() -> None:
    doc = json.loads(render_sbom(SUBJECT, [ZLIB], None))
    assert "timestamp" not in doc["metadata"]
    assert doc["serialNumber"].startswith("urn:uuid:")


@pytest.mark.parametrize(
    ("version", "encoded"),
    [
        ("1:2.36-9+deb12u4", "1%3A2.36-9%2Bdeb12u4"),
        ("0.1.0+src1a2b~rc1", "0.1.0%2Bsrc1a2b~rc1"),
        ("2.0~beta1-1", "2.0~beta1-1"),
    ],
)
def test_purl_escapes_versions(version: str, encoded: str) -> None:
    pkg = Package("x", version, "all", "x", version)
    assert purl("debian", pkg, "bookworm") == f"pkg:deb/debian/x@{encoded}?arch=all&distro=bookworm"


def test_hostile_names_are_data(tmp_path: Path) -> None:
    name = '../../etc/passwd"\n?x=1&y#z'
    pkg = Package(name, "1&2", "amd64", name, "1", None)
    text = render_sbom(SUBJECT, [pkg], None)
    comp = json.loads(text)["components"][0]
    assert comp["name"] == name
    assert comp["purl"] == (
        "pkg:deb/debian/..%2F..%2Fetc%2Fpasswd%22%0A%3Fx%3D1%26y%23z@1%262"
        "?arch=amd64&distro=bookworm"
    )
    assert list(tmp_path.iterdir()) == []  # nothing was written anywhere


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("http://mirror.example/debian/dists/bookworm/", "mirror.example_debian_dists_bookworm_"),
        (
            "copy:///var/lib/livestrap/repo/dists/livestrap/",
            "_var_lib_livestrap_repo_dists_livestrap_",
        ),
        ("http://u:pw@10.0.0.1:8080/a_b~c/", "10.0.0.1:8080_a%5fb%7ec_"),
    ],
)
def test_list_name_as_apt_names_it(uri: str, name: str) -> None:
    assert aptlists.list_name(uri) == name


INRELEASE = """\
-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA512

Origin: Acme
Label: Acme Tools
Suite: stable
SHA256:
 0123 100 main/binary-amd64/Packages
"""


def _lists(tmp_path: Path) -> Path:
    lists = tmp_path / aptlists.LISTS
    lists.mkdir(parents=True)
    (lists / "mirror.example_debian_dists_bookworm_main_binary-amd64_Packages").write_text(
        "Package: tool\nVersion: 1.0\nArchitecture: amd64\n\n"
        "Package: zlib1g\nVersion: 1:1.2.13.dfsg-1\nArchitecture: amd64\n"
    )
    (lists / "mirror.example_debian_dists_bookworm_InRelease").write_text(
        INRELEASE.replace("Acme Tools", "Debian").replace("Acme", "Debian")
    )
    (lists / "repo.example_acme_dists_stable_main_binary-amd64_Packages").write_text(
        "Package: tool\nVersion: 1.0\nArchitecture: amd64\nDescription: same version\n\n"
        "Package: tool\nVersion: 0.9\nArchitecture: amd64\n"
    )
    (lists / "repo.example_acme_dists_stable_InRelease").write_text(INRELEASE)
    return lists


def test_archive_index_prefers_the_higher_pin(tmp_path: Path) -> None:
    sources = [
        AptSource("debian", "http://mirror.example/debian", ("bookworm",), ("main",), None),
        AptSource("acme", "http://repo.example/acme/", ("stable",), ("main",), None),
    ]
    index = aptlists.archive_index(_lists(tmp_path), sources, {"acme": 700})
    acme = Archive("http://repo.example/acme/", "stable", "main", "Acme", "Acme Tools")
    assert index[("tool", "1.0", "amd64")] == acme
    assert index[("tool", "0.9", "amd64")] == acme
    assert index[("zlib1g", "1:1.2.13.dfsg-1", "amd64")].origin == "Debian"
    low = aptlists.archive_index(_lists(tmp_path / "2"), sources, {"acme": 100})
    assert low[("tool", "1.0", "amd64")].uri == "http://mirror.example/debian"


def test_installed_packages_join() -> None:
    index = {("zlib1g", "1:1.2.13.dfsg-1", "amd64"): DEBIAN}
    lines = [
        "zlib1g\t1:1.2.13.dfsg-1\tamd64\tzlib\t1:1.2.13.dfsg-1\tii ",
        "gone\t1.0\tamd64\tgone\t1.0\trc ",
        "local\t2.0\tall\t\t\tii ",
        "broken line",
    ]
    assert aptlists.installed_packages(lines, index) == [
        Package("zlib1g", "1:1.2.13.dfsg-1", "amd64", "zlib", "1:1.2.13.dfsg-1", DEBIAN),
        Package("local", "2.0", "all", "local", "2.0", None),
    ]
