"""builder.noderepo: the image keeps the master repo's key and suite for the agent's installs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from livestrap.agent import aptinstall
from livestrap.agent.aptinstall import parse_repo_info
from livestrap.builder import noderepo
from livestrap.resolve import AgentRepo, resolve
from livestrap.spec import BuildSpec, Repo, ResolvedSpec

pytestmark = pytest.mark.unit

KEYS = Path(__file__).resolve().parents[1] / "fixtures/keys"


def spec(with_repo: bool = True) -> ResolvedSpec:
    repo = Repo(name="livestrap", uri="copy:///data/repo", suite="livestrap",
                components=["main"], priority=900, key=KEYS / "repo-test.asc")  # fmt: skip
    return resolve(
        BuildSpec(
            label="t", mirror="http://deb.example/debian", mirror_key=KEYS / "archive-test.asc"
        ),
        agent=(lambda: AgentRepo(repo, ("livestrap-agent",))) if with_repo else None,
        environ={},
        apt_root=Path("/nonexistent-livestrap-apt-root"),
    )


def read(path: str) -> bytes:
    return Path(path).read_bytes()


def test_image_files_exact(tmp_path: Path) -> None:
    resolved = spec()
    files = noderepo.image_repo_files(resolved, read)
    assert sorted(files) == [
        "etc/livestrap/master-repo.json",
        "usr/share/livestrap/master-repo.asc",
    ]
    assert files["etc/livestrap/master-repo.json"] == (
        '{\n  "suite": "livestrap",\n  "components": [\n    "main"\n  ]\n}\n'
    )
    key = files["usr/share/livestrap/master-repo.asc"]
    assert key.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert key.rstrip().endswith("-----END PGP PUBLIC KEY BLOCK-----")
    # what the agent reads back from those paths
    assert parse_repo_info(files["etc/livestrap/master-repo.json"]).suite == "livestrap"
    written = noderepo.write_image_repo(tmp_path, resolved, read)
    assert written == [str(aptinstall.IMAGE_REPO_CONFIG), str(aptinstall.IMAGE_REPO_KEY)]
    assert (tmp_path / "usr/share/livestrap/master-repo.asc").stat().st_mode & 0o777 == 0o644
    assert json.loads((tmp_path / "etc/livestrap/master-repo.json").read_text())["components"] == [
        "main"
    ]


def test_no_master_repo_no_files(tmp_path: Path) -> None:
    resolved = spec(with_repo=False)
    assert noderepo.write_image_repo(tmp_path, resolved, lambda p: b"") == []
    assert list(tmp_path.iterdir()) == []


def test_the_paths_are_the_agents() -> None:
    assert noderepo.IMAGE_REPO_KEY == aptinstall.IMAGE_REPO_KEY
    assert noderepo.IMAGE_REPO_CONFIG == aptinstall.IMAGE_REPO_CONFIG
