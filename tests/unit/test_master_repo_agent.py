"""When the master's repository gets this livestrap's agent again: never published, or
published from other agent sources (an upgraded master). An operator's own version stays."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.packaging.agent_deb import agent_version
from livestrap.packaging.master_repo import MasterRepo

pytestmark = pytest.mark.unit


def with_index(tmp_path: Path, stanzas: str) -> MasterRepo:
    repo = MasterRepo(tmp_path)
    index = repo.root / "dists/livestrap/main/binary-amd64"
    index.mkdir(parents=True)
    (index / "Packages").write_text(stanzas)
    return repo


def test_no_agent_published_is_stale(tmp_path: Path) -> None:
    assert MasterRepo(tmp_path).agent_is_stale()
    repo = with_index(tmp_path, "Package: debug-tool\nVersion: 1.0\n")
    assert repo.published_version("livestrap-agent") is None and repo.agent_is_stale()


def test_an_agent_from_other_sources_is_stale_this_one_is_not(tmp_path: Path) -> None:
    repo = with_index(tmp_path, "Package: livestrap-agent\nVersion: 0.1.0+srcf1331a1afd\n\n"
                                "Package: debug-tool\nVersion: 2.0\n")  # fmt: skip
    assert repo.published_version("livestrap-agent") == "0.1.0+srcf1331a1afd"
    assert repo.published_version("debug-tool") == "2.0"
    assert repo.agent_is_stale() == (agent_version() != "0.1.0+srcf1331a1afd")
    (repo.root / "dists/livestrap/main/binary-amd64/Packages").write_text(
        f"Package: livestrap-agent\nVersion: {agent_version()}\n"
    )
    assert not repo.agent_is_stale()


def test_an_operators_own_agent_version_is_left_alone(tmp_path: Path) -> None:
    repo = with_index(tmp_path, "Package: livestrap-agent\nVersion: 0.1.0.1+e2e\n")
    assert not repo.agent_is_stale()
