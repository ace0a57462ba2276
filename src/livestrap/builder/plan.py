"""The build plan: how a parsed spec becomes the ResolvedSpec that build() takes, here.

resolve() fills and checks it; when the spec wants the agent, the plan publishes the
agent to the master's repository on first use (and again when the master's agent
changed) and has resolve() add that repository.
The CLI and the master both build through a plan, so neither needs packaging/ to build.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from livestrap.packaging.master_repo import MasterRepo
from livestrap.resolve import AgentRepo, resolve, with_agent
from livestrap.run import LineSink
from livestrap.spec import BuildSpec, ResolvedSpec


def _quiet(_: object) -> None:
    return None


@dataclass(frozen=True)
class BuildPlan:
    """data_dir: whose repository the agent comes from. with_agent=False leaves that
    repository out (fake stages install nothing). announce: told the repository's folder
    just before a first publish; log: the publish's command output."""

    data_dir: Path
    with_agent: bool = True
    announce: Callable[[Path], None] = field(default=_quiet)
    log: LineSink = field(default=_quiet)

    def resolve(self, spec: BuildSpec, source: str = "spec") -> ResolvedSpec:
        """The spec resolved on this host, with the master's repository when it wants the agent."""
        return resolve(spec, agent=self._agent if self.with_agent else None, source=source)

    def add_agent(self, spec: ResolvedSpec) -> ResolvedSpec:
        """`spec` (resolved without the agent) with the master's repository, published on
        first use: the build worker's step, so the API process never runs gpg."""
        if not self.with_agent or not spec.agent:
            return spec
        return with_agent(spec, self._agent())

    def _agent(self) -> AgentRepo:
        repo = MasterRepo(self.data_dir)
        if repo.needs_agent():
            self.announce(repo.root)
            repo.ensure_published(log=self.log)
        return repo.agent_repo()
