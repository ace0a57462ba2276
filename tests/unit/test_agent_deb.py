"""packaging.agent_deb: the package's version follows everything it ships."""

from __future__ import annotations

from pathlib import Path

import pytest

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
