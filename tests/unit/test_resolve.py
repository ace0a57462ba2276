"""resolve(), the build plan and the re-check: one path from a parsed spec to build()."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ValidationError

from livestrap.builder import plan as plan_module
from livestrap.builder.plan import BuildPlan
from livestrap.errors import RepoError, SpecError
from livestrap.resolve import AgentRepo, resolve
from livestrap.spec import Repo, ResolvedSpec, parse_spec
from livestrap.specfields import recheck_host_inputs
from livestrap.specpaths import PathRules

pytestmark = pytest.mark.unit

KEY = Path(__file__).resolve().parents[1] / "fixtures/keys/archive-test.asc"
PORTABLE = {"mirror": "http://deb.example/debian", "mirror_key": str(KEY)}
NO_HOST = Path("/nonexistent-livestrap-apt-root")
AGENT = AgentRepo(
    Repo(name="livestrap", uri="copy:///srv/repo", suite="livestrap", key=KEY, priority=900),
    ("dmidecode", "livestrap-agent"),
)


def resolved(data: dict[str, object], agent: list[str] | None = None) -> ResolvedSpec:
    """resolve() with no host sources; `agent` records each call of the agent source."""

    def source() -> AgentRepo:
        assert agent is not None
        agent.append("called")
        return AGENT

    spec = parse_spec({**PORTABLE, **data})
    return resolve(spec, agent=source if agent is not None else None, environ={}, apt_root=NO_HOST)


def test_the_agent_repo_and_packages_come_last() -> None:
    calls: list[str] = []
    spec = resolved({"packages": ["htop", "dmidecode"]}, calls)
    assert calls == ["called"]
    assert [r.name for r in spec.repos] == ["livestrap"]
    assert spec.packages == ["htop", "dmidecode", "livestrap-agent"]
    assert resolved({"packages": ["htop"]}).repos == []  # no agent source: nothing added


def test_no_agent_wanted_no_publish() -> None:
    calls: list[str] = []
    assert resolved({"agent": False}, calls).repos == [] and calls == []


def test_pins_are_checked_before_the_agent_is_published() -> None:
    calls: list[str] = []
    repos = [
        {"name": n, "uri": "http://same.example/x", "suite": "s", "key": str(KEY)}
        for n in ("one", "two")
    ]
    with pytest.raises(SpecError, match="spec is invalid:\n  repos one, two share the pin"):
        resolved({"repos": repos}, calls)
    assert calls == []


def test_the_masters_repo_name_is_reserved() -> None:
    repo = {"name": "livestrap", "uri": "http://x.example/x", "suite": "s", "key": str(KEY)}
    with pytest.raises(RepoError, match="reserved for the master's own repository"):
        resolved({"repos": [repo]}, [])


def test_a_resolved_spec_is_frozen_and_definite() -> None:
    spec = resolved({})
    with pytest.raises(ValidationError, match="frozen"):
        spec.label = "other"  # type: ignore[misc]
    assert (spec.suite, spec.components, spec.kernel) == ("bookworm", ["main"], "linux-image-amd64")


class FakeRepo:
    published: ClassVar[list[Path]] = []

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "repo"

    def needs_agent(self) -> bool:
        return not self.published

    def ensure_published(self, *, log: object) -> None:
        self.published.append(self.root)

    def agent_repo(self) -> AgentRepo:
        return AGENT


def test_the_plan_publishes_the_agent_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan_module, "MasterRepo", FakeRepo)
    monkeypatch.setattr(FakeRepo, "published", [])
    monkeypatch.setenv("LIVESTRAP_MIRROR", "http://deb.example/debian")
    told: list[Path] = []
    plan = BuildPlan(tmp_path, announce=told.append)
    for _ in range(2):
        spec = plan.resolve(parse_spec({"mirror_key": str(KEY)}))
        assert spec.repos[-1].name == "livestrap"
    assert told == [tmp_path / "repo"] and FakeRepo.published == [tmp_path / "repo"]
    assert BuildPlan(tmp_path, with_agent=False).resolve(parse_spec(PORTABLE)).repos == []


@pytest.mark.security
def test_the_recheck_names_the_field_that_changed(tmp_path: Path) -> None:
    """A folder accepted when parsed, swapped for a link out of the allowed one since."""
    allowed, outside = tmp_path / "spec", tmp_path / "outside"
    (allowed / "overlay").mkdir(parents=True)
    outside.mkdir()
    spec = resolved({"extra_dirs": [str(allowed / "overlay")], "scripts": [str(KEY)]})
    rules = PathRules(confine=allowed, only_named=True)
    recheck_host_inputs(spec, rules)
    (allowed / "overlay").rmdir()
    (allowed / "overlay").symlink_to(outside)
    with pytest.raises(SpecError) as err:
        recheck_host_inputs(spec, rules, source="build spec")
    lines = str(err.value).splitlines()
    assert lines[0] == "build spec is invalid:"
    assert lines[1].startswith("  extra_dirs: not allowed:") and "outside" in lines[1]
    assert len(lines) == 2  # the script and the key are outside spec/ as named: not bound
