"""`firmware:` in a spec: short names to Debian's firmware-* packages, `all-network`, the
non-free-firmware component resolve() adds, and what the rootfs stage installs."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.apt import render_sources, spec_sources
from livestrap.builder import basetree
from livestrap.errors import SpecError
from livestrap.resolve import resolve
from livestrap.spec import BASE_PACKAGES, ResolvedSpec, parse_spec
from livestrap.specfields import ALL_NETWORK_FIRMWARE, FIRMWARE_PACKAGES

pytestmark = pytest.mark.unit

KEY = Path(__file__).resolve().parents[1] / "fixtures/keys/archive-test.asc"
PORTABLE = {"mirror": "http://deb.example/debian", "mirror_key": str(KEY)}
NO_HOST = Path("/nonexistent-livestrap-apt-root")
UPSTREAM = {"http://deb.example/debian/dists/bookworm/InRelease": "ab" * 32}


def resolved(**data: object) -> ResolvedSpec:
    spec = parse_spec({**PORTABLE, **data})
    return resolve(spec, environ={}, apt_root=NO_HOST)


def problem(data: dict[str, object]) -> str:
    with pytest.raises(SpecError) as err:
        parse_spec({**PORTABLE, **data})
    return str(err.value)


def test_names_map_to_debian_packages_in_the_spec_order() -> None:
    spec = resolved(firmware=["qlogic", "bnx2x", "qlogic"])
    assert spec.firmware == ["qlogic", "bnx2x"]
    assert spec.firmware_packages() == ["firmware-qlogic", "firmware-bnx2x"]
    assert spec.all_packages() == [
        *BASE_PACKAGES, "linux-image-amd64", "firmware-qlogic", "firmware-bnx2x",
    ]  # fmt: skip


def test_all_network_is_the_nic_set() -> None:
    spec = resolved(firmware="all-network")
    assert spec.firmware == "all-network"
    assert spec.firmware_packages() == [
        "firmware-bnx2", "firmware-bnx2x", "firmware-cavium", "firmware-misc-nonfree",
        "firmware-myricom", "firmware-netronome", "firmware-netxen", "firmware-qlogic",
        "firmware-realtek",
    ]  # fmt: skip
    assert set(ALL_NETWORK_FIRMWARE) <= set(FIRMWARE_PACKAGES)


def test_default_is_none() -> None:
    spec = resolved()
    assert spec.firmware == [] and spec.firmware_packages() == []
    assert spec.components == ["main"]
    assert not [p for p in spec.all_packages() if p.startswith("firmware-")]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["bnx2x", "e1000e"], "unknown firmware 'e1000e'; known: bnx2, bnx2x, cavium,"),
        (["firmware-bnx2x"], "unknown firmware 'firmware-bnx2x' (write 'bnx2x'); known:"),
        ("bnx2x", "'bnx2x': give a list of firmware names or 'all-network'"),
        ("all", "'all': give a list of firmware names or 'all-network'"),
    ],
)
def test_unknown_names_are_refused_with_the_known_ones(value: object, expected: str) -> None:
    message = problem({"firmware": value})
    assert "firmware" in message and expected in message


def test_ubuntu_is_refused() -> None:
    message = problem({"distro": "ubuntu", "firmware": ["bnx2x"]})
    assert "firmware names Debian's non-free-firmware packages; on ubuntu" in message
    parse_spec({**PORTABLE, "distro": "ubuntu"})  # no firmware: fine


def test_the_component_is_added_once_after_those_given() -> None:
    assert resolved(firmware=["bnx2x"]).components == ["main", "non-free-firmware"]
    given = resolved(firmware=["bnx2x"], components=["main", "contrib"]).components
    assert given == ["main", "contrib", "non-free-firmware"]
    kept = resolved(firmware=["bnx2x"], components=["non-free-firmware", "main"]).components
    assert kept == ["non-free-firmware", "main"]
    again = resolve(resolved(firmware=["bnx2x"]), environ={}, apt_root=NO_HOST)
    assert again.components == ["main", "non-free-firmware"]  # a recorded spec resolved again


def test_distro_and_security_sources_get_the_component() -> None:
    spec = resolved(firmware="all-network", security_mirror="http://sec.example/debian-security")
    text = render_sources(spec_sources(spec, lambda _: KEY.read_bytes()))
    assert text.count("Components: main non-free-firmware\n") == 2
    assert "Suites: bookworm-security\n" in text


def test_the_firmware_list_does_not_change_the_base_tree() -> None:
    """Its packages are packages: a kept tree with the component is started from."""
    one = resolved(firmware=["bnx2x"])
    other = resolved(firmware="all-network")
    none = resolved()
    assert basetree.base_key(one, UPSTREAM) == basetree.base_key(other, UPSTREAM)
    assert basetree.base_key(one, UPSTREAM) != basetree.base_key(none, UPSTREAM)


def test_the_spec_hash_follows_the_firmware() -> None:
    assert resolved(firmware=["bnx2x"]).sha256() != resolved(firmware=["bnx2"]).sha256()
