"""resolve: the distro's suites (`suites:`) and the security repository from the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from livestrap.apt import spec_sources
from livestrap.errors import SpecError
from livestrap.mirror import find_security_source, has_suite, host_sources
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec, ResolvedSpec, parse_spec

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APT = FIXTURES / "apt"
ARCHIVE_KEY = FIXTURES / "keys" / "archive-test.asc"
DEBIAN = "http://mirror.example.test/debian"
SECURITY = "http://security-mirror.example.test/debian-security"


def spec(**fields: Any) -> BuildSpec:
    return parse_spec({"mirror_key": str(ARCHIVE_KEY), **fields})


@pytest.mark.parametrize("root", ["debian-oneline", "debian-deb822"])
def test_default_suites_and_security_from_the_host(root: str) -> None:
    resolved = resolve(spec(), environ={}, apt_root=APT / root)
    assert resolved.suite == "bookworm"
    assert resolved.suites == ["bookworm", "bookworm-updates"]
    assert (resolved.security, resolved.security_mirror) == (True, SECURITY)
    distro, security = spec_sources(resolved, lambda p: Path(p).read_bytes())
    assert distro.suites == ("bookworm", "bookworm-updates")
    assert (security.name, security.uri, security.suites) == (
        "security",
        SECURITY,
        ("bookworm-security",),
    )


def test_no_updates_or_security_on_a_host_without_them(tmp_path: Path) -> None:
    resolved = resolve(spec(), environ={}, apt_root=APT / "ordering")
    assert resolved.suites == ["bookworm"]
    assert (resolved.security, resolved.security_mirror) == (False, None)
    assert len(spec_sources(resolved, lambda p: Path(p).read_bytes())) == 1


def test_updates_only_when_the_host_uses_them_from_that_mirror() -> None:
    env = {"LIVESTRAP_MIRROR": "http://env-mirror.example.test/debian"}
    resolved = resolve(spec(), environ=env, apt_root=APT / "debian-oneline")
    assert resolved.suites == ["bookworm"]


def test_explicit_suites_and_the_main_suite() -> None:
    resolved = resolve(spec(suites=["bookworm"]), environ={}, apt_root=APT / "debian-oneline")
    assert resolved.suites == ["bookworm"] and resolved.suite == "bookworm"
    taken = resolve(
        spec(suites=["trixie", "trixie-updates"]), environ={}, apt_root=APT / "ordering"
    )
    assert taken.suite == "trixie"  # mmdebstrap's SUITE argument: the first of `suites`
    with pytest.raises(SpecError, match="suites must start with the suite 'bookworm'"):
        spec(suite="bookworm", suites=["trixie"])
    with pytest.raises(SpecError, match="suites must name at least one suite"):
        spec(suites=[])


def test_security_off_and_overrides(tmp_path: Path) -> None:
    off = resolve(spec(security=False), environ={}, apt_root=APT / "debian-deb822")
    assert (off.security, off.security_mirror) == (False, None)
    env = {"LIVESTRAP_SECURITY_MIRROR": "http://env-security.example.test/debian-security/"}
    by_env = resolve(spec(), environ=env, apt_root=APT / "debian-deb822")
    assert by_env.security_mirror == "http://env-security.example.test/debian-security"
    own = spec(security_mirror="http://own.example.test/sec")
    env["LIVESTRAP_MIRROR"] = DEBIAN
    assert resolve(own, environ=env, apt_root=tmp_path).security_mirror == (
        "http://own.example.test/sec"
    )
    with pytest.raises(SpecError, match="security: true, but the host's APT sources have no"):
        resolve(spec(security=True), environ={"LIVESTRAP_MIRROR": DEBIAN}, apt_root=tmp_path)
    with pytest.raises(SpecError, match="LIVESTRAP_SECURITY_MIRROR: "):
        env = {"LIVESTRAP_MIRROR": DEBIAN, "LIVESTRAP_SECURITY_MIRROR": "ftp://x"}
        resolve(spec(), environ=env, apt_root=tmp_path)
    with pytest.raises(SpecError, match="security_mirror is set but security is false"):
        spec(security=False, security_mirror="http://own.example.test/sec")


def test_security_source_from_host_entries() -> None:
    ubuntu = host_sources(APT / "ubuntu-noble")
    assert find_security_source(ubuntu, "ubuntu", "noble") == (
        "http://ubuntu-security.example.test/ubuntu"
    )
    assert find_security_source(ubuntu, "debian", "noble") is None
    assert find_security_source(ubuntu, "ubuntu", "jammy") is None
    assert has_suite(ubuntu, "http://ubuntu-mirror.example.test/ubuntu", "noble-updates")
    assert not has_suite(ubuntu, "http://ubuntu-security.example.test/ubuntu", "noble-updates")


def test_a_spec_resolved_before_suites_existed_still_validates() -> None:
    resolved = resolve(spec(), environ={}, apt_root=APT / "debian-oneline")
    old = resolved.model_dump(mode="json", exclude={"suites", "security", "security_mirror"})
    again = ResolvedSpec.model_validate(old)
    assert (again.suites, again.security, again.security_mirror) == (None, False, None)
    [distro] = spec_sources(again, lambda p: Path(p).read_bytes())
    assert distro.suites == ("bookworm",)


def test_another_mirror_gets_no_host_security_repo_unless_asked() -> None:
    """A build pointed at its own mirror does not also reach the host's security mirror."""
    root = APT / "debian-deb822"
    other = {"LIVESTRAP_MIRROR": "http://local-mirror.example.test/debian"}
    assert resolve(spec(), environ=other, apt_root=root).security is False
    asked = resolve(spec(security=True), environ=other, apt_root=root)
    assert (asked.security, asked.security_mirror) == (True, SECURITY)
