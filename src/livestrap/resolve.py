"""resolve(): a parsed spec becomes the one thing a build takes, a frozen ResolvedSpec.

In this order: the mirror (spec > LIVESTRAP_MIRROR > the host's APT sources), its archive
key, the distro's suite, components (non-free-firmware added when the spec names
firmware) and kernel; then the pins of the spec's repos; then,
when the spec wants the agent, the master's repository and the agent's packages (the
caller's `agent` source may publish them first: see livestrap.builder.plan). The files
the spec names were checked when it was parsed; livestrap.specfields marks their fields,
so the fingerprint and the build worker's re-check find every one.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from livestrap.apt import pin_conflicts
from livestrap.errors import RepoError, SpecError
from livestrap.mirror import (
    SourceEntry,
    find_distro_source,
    find_security_source,
    has_suite,
    host_sources,
)
from livestrap.spec import BuildSpec, Repo, ResolvedSpec
from livestrap.specerrors import format_validation_error
from livestrap.specfields import FIRMWARE_COMPONENT, RECORDED, check_url

DISTRO_DEFAULTS: dict[str, dict[str, Any]] = {
    "debian": {
        "suite": "bookworm",
        "components": ["main"],
        "kernel": "linux-image-amd64",
        "keyring": "/usr/share/keyrings/debian-archive-keyring.gpg",
    },
    "ubuntu": {
        "suite": "noble",
        "components": ["main", "universe"],
        "kernel": "linux-image-generic",
        "keyring": "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
    },
}


@dataclass(frozen=True)
class AgentRepo:
    """The master's repository and what a spec that wants the agent installs from it."""

    repo: Repo
    packages: tuple[str, ...]


# Called only when the spec wants the agent, after every other check passed: it may
# publish the agent first (see livestrap.builder.plan), which is slow on first use.
AgentSource = Callable[[], AgentRepo]


def resolve(
    spec: BuildSpec,
    *,
    agent: AgentSource | None = None,
    source: str = "spec",
    environ: Mapping[str, str] | None = None,
    apt_root: Path = Path("/"),
) -> ResolvedSpec:
    """The full effective spec; SpecError names what is missing or conflicts (`source`
    heads the message). Without `agent`, the master's repository is not added."""
    filled = _defaults(spec, os.environ if environ is None else environ, apt_root)
    try:  # its paths were checked when it was parsed; the additions are the host's keyring
        data = {**spec.model_dump(), **filled}
        resolved = ResolvedSpec.model_validate(data, context={RECORDED: True})
    except ValidationError as err:  # e.g. LIVESTRAP_MIRROR=file:///
        raise SpecError(format_validation_error(err, source)) from None
    problems = pin_conflicts(resolved)
    if problems:
        raise SpecError(f"{source} is invalid:\n  " + "\n  ".join(problems))
    if agent is None or not spec.agent:
        return resolved
    return with_agent(resolved, agent())


def with_agent(spec: ResolvedSpec, agent: AgentRepo) -> ResolvedSpec:
    """The spec plus the master's repo and the agent's packages."""
    if any(r.name == agent.repo.name for r in spec.repos):
        raise RepoError(
            f"repo name {agent.repo.name!r} is reserved for the master's own repository"
        )
    packages = list(dict.fromkeys([*spec.packages, *agent.packages]))
    return spec.model_copy(update={"repos": [*spec.repos, agent.repo], "packages": packages})


def _defaults(spec: BuildSpec, env: Mapping[str, str], apt_root: Path) -> dict[str, Any]:
    """Mirror (spec > LIVESTRAP_MIRROR > host APT), key, suite, components, kernel."""
    defaults = DISTRO_DEFAULTS[spec.distro]
    entries = host_sources(apt_root)
    host: SourceEntry | None = find_distro_source(entries, spec.distro)
    if spec.mirror:
        mirror: str | None = spec.mirror
    elif env.get("LIVESTRAP_MIRROR"):
        try:
            mirror = check_url(env["LIVESTRAP_MIRROR"])
        except ValueError as err:
            raise SpecError(f"LIVESTRAP_MIRROR: {err}") from None
    else:
        mirror = host.uri if host else None
    if not mirror:
        raise SpecError(
            f"no mirror for distro {spec.distro}: set `mirror` in the spec or "
            f"LIVESTRAP_MIRROR, or add a {spec.distro} entry to the host's APT sources"
        )
    try:
        mirror = check_url(mirror)
    except ValueError as err:
        origin = host.origin_file if host else "host APT sources"
        raise SpecError(f"mirror from {origin}: {err}; set `mirror` or LIVESTRAP_MIRROR") from None
    key = spec.mirror_key
    if key is None:
        candidates = [host.signed_by] if host and host.signed_by else []
        candidates.append(defaults["keyring"])
        key = next((Path(c) for c in candidates if Path(c).is_file()), None)
    if key is None:
        raise SpecError(
            f"no archive key for distro {spec.distro}: set `mirror_key` to the archive "
            f"keyring file (tried {', '.join(candidates)})"
        )
    suite = spec.suite or (spec.suites[0] if spec.suites else None)
    suite = suite or (host.suites[0] if host else defaults["suite"])
    return {
        "mirror": mirror,
        "mirror_key": key,
        "suite": suite,
        "suites": spec.suites or _default_suites(entries, mirror, suite),
        **_security(spec, env, entries, suite, host is not None and mirror == host.uri),
        "components": _components(spec, spec.components or list(defaults["components"])),
        "kernel": spec.kernel or defaults["kernel"],
    }


def _components(spec: BuildSpec, components: list[str]) -> list[str]:
    """The distro repository's components, with non-free-firmware when the spec names
    firmware (its packages are there): added once, after those given."""
    if spec.firmware and FIRMWARE_COMPONENT not in components:
        return [*components, FIRMWARE_COMPONENT]
    return components


def _default_suites(entries: list[SourceEntry], mirror: str, suite: str) -> list[str]:
    """The suite, and its -updates suite when the host uses it from the same mirror."""
    updates = f"{suite}-updates"
    return [suite, updates] if has_suite(entries, mirror, updates) else [suite]


def _security(
    spec: BuildSpec,
    env: Mapping[str, str],
    entries: list[SourceEntry],
    suite: str,
    host_mirror: bool,
) -> dict[str, Any]:
    """`security` and `security_mirror`: the spec's, else LIVESTRAP_SECURITY_MIRROR, else
    the host's `SUITE-security` entry; none at all means no security repository. The
    host's entry is taken by default only when the mirror is the host's too: a build
    pointed at another (local, offline) mirror does not also reach the host's."""
    if spec.security is False:
        return {"security": False, "security_mirror": None}
    uri = spec.security_mirror
    if uri is None and env.get("LIVESTRAP_SECURITY_MIRROR"):
        try:
            uri = check_url(env["LIVESTRAP_SECURITY_MIRROR"])
        except ValueError as err:
            raise SpecError(f"LIVESTRAP_SECURITY_MIRROR: {err}") from None
    if uri is None and (host_mirror or spec.security):
        uri = find_security_source(entries, spec.distro, suite)
    if uri is None and spec.security:
        raise SpecError(
            f"security: true, but the host's APT sources have no {suite}-security entry "
            "for the distro: set `security_mirror` or LIVESTRAP_SECURITY_MIRROR"
        )
    return {"security": uri is not None, "security_mirror": uri}
