"""packaging.agent_deb: the package's version follows everything it ships."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from livestrap.agent import __version__, installed_version
from livestrap.cli import app
from livestrap.packaging import agent_deb

pytestmark = pytest.mark.unit


def test_a_changed_unit_is_a_new_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = agent_deb.agent_version()
    monkeypatch.setattr(agent_deb, "render_unit", lambda: "[Unit]\nDescription=other\n")
    assert agent_deb.agent_version() != before


def test_maintainer_scripts_byte_compile_and_clean(tmp_path: Path) -> None:
    agent_deb.stage_agent_tree(tmp_path / "tree")
    debian = tmp_path / "tree/DEBIAN"
    assert "py3compile -p livestrap-agent" in (debian / "postinst").read_text()
    assert "py3clean -p livestrap-agent" in (debian / "prerm").read_text()
    assert sorted(p.name for p in debian.iterdir()) == ["postinst", "postrm", "prerm"]
    assert set(agent_deb.packaging_files()) == {"unit", "launcher", "postinst", "prerm", "postrm"}


def test_postinst_enables_on_first_install_and_never_restarts() -> None:
    script = agent_deb.POSTINST
    enable = script.index("deb-systemd-helper enable")
    assert 'if [ "$1" = configure ] && [ -z "$2" ]; then' in script[:enable]
    commands = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("#"))
    for restart in ("restart", "deb-systemd-invoke", "systemctl start", "stop"):
        assert restart not in commands


def test_the_package_carries_its_version_for_the_agent(tmp_path: Path) -> None:
    agent_deb.stage_agent_tree(tmp_path / "a", version="0.2.0+test1")
    version_file = tmp_path / "a" / agent_deb.DIST_PACKAGES / "livestrap/agent/VERSION"
    assert version_file.read_text() == "0.2.0+test1\n"
    assert installed_version(version_file) == "0.2.0+test1"
    agent_deb.stage_agent_tree(tmp_path / "b")
    default = tmp_path / "b" / agent_deb.DIST_PACKAGES / "livestrap/agent/VERSION"
    assert default.read_text() == agent_deb.agent_version() + "\n"


def test_installed_version_falls_back_to_the_source_version(tmp_path: Path) -> None:
    assert installed_version(tmp_path / "none") == __version__
    (tmp_path / "bad").write_text("1.0\x1b[31m\n")
    assert installed_version(tmp_path / "bad") == __version__
    (tmp_path / "long").write_text("1" * 65)
    assert installed_version(tmp_path / "long") == __version__


@pytest.mark.parametrize("version", ["0.2.0+test1", "1:0.1.0~rc1", "0.1.0+src0123456789"])
def test_check_version_takes_debian_versions(version: str) -> None:
    agent_deb.check_version(version)


@pytest.mark.parametrize("version", ["", "v1", "1.0 2", "1.0\n", "1_0", "1" * 65, "-1"])
def test_check_version_refuses_the_rest(version: str) -> None:
    with pytest.raises(ValueError, match="not a Debian package version"):
        agent_deb.check_version(version)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
def test_build_deb_with_a_version(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["agent", "build-deb", "--out-dir", str(tmp_path), "--version", "0.2.0+test1"]
    )
    assert result.exit_code == 0, result.output
    deb = tmp_path / "livestrap-agent_0.2.0+test1_all.deb"
    assert result.stdout.strip() == str(deb)
    listing = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    )
    with tarfile.open(fileobj=io.BytesIO(listing.stdout)) as tar:
        names = tar.getnames()
    assert "./usr/lib/python3/dist-packages/livestrap/agent/VERSION" in names
    bad = CliRunner().invoke(
        app, ["agent", "build-deb", "--out-dir", str(tmp_path), "--version", "a b"]
    )
    assert bad.exit_code == 2 and "not a Debian package version" in bad.output
