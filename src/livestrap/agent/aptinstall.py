"""The `install` action: apt-get from the master's signed repository and nothing else.

The image carries that repository's public key (IMAGE_REPO_KEY) and its suite and
components (IMAGE_REPO_CONFIG), written by the build's customize stage. The agent renders
one deb822 source under /run/livestrap/apt/ (URIs `<livestrap.url>/repo`, Signed-By that
key) and points apt's SourceList, SourceParts, Lists and Cache there, so no other source
is ever read and the image's own /var/lib/apt/lists stays as it was. The image's
/etc/apt/preferences.d still applies: the build pinned the master's repository by its
release file (`release o=livestrap`, priority 900) and the node's source matches that pin.

Exact names only: apt-get reads a name ending in "-" as "remove it" and a name with
regex characters that matches no package exactly as a pattern. So after the private
update the agent reads the repository's Packages indexes (plain text in the private
lists dir: GzipIndexes is turned off for that run) and refuses, before any install, a
name, or a pinned name=version, that is not listed there exactly.

apt safety: needrestart (which Ubuntu's apt hooks run) is told to restart nothing and
ask nothing; a dpkg run that an earlier timeout or power cut left interrupted (files
in /var/lib/dpkg/updates, where apt-get would refuse to start) is finished first with
`dpkg --configure -a`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .runner import Runner

IMAGE_REPO_KEY = Path("/usr/share/livestrap/master-repo.asc")
IMAGE_REPO_CONFIG = Path("/etc/livestrap/master-repo.json")
APT_DIR = Path("/run/livestrap/apt")
UPDATE_TIMEOUT_S = 180.0
INSTALL_TIMEOUT_S = 600.0  # all three stay under the master's action_timeout_s (900)
REPAIR_TIMEOUT_S = 120.0
DPKG_UPDATES = Path("/var/lib/dpkg/updates")
TAIL_CHARS = 4096
ERROR_CHARS = 500
APT_ENV = {
    "DEBIAN_FRONTEND": "noninteractive",
    "APT_LISTCHANGES_FRONTEND": "none",
    "NEEDRESTART_SUSPEND": "1",  # needrestart's apt hook: restart no service
    "NEEDRESTART_MODE": "l",  # and only list, never ask
    "LC_ALL": "C",  # the messages explain_failure reads are apt's English ones
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
}
INDEX_GLOB = "*_Packages"
MAX_INDEX_BYTES = 256 << 20  # read from each index at most (a repository is far smaller)
_WORD = re.compile(r"[a-z0-9][a-z0-9.+~-]{0,63}")
_URL = re.compile(r"https?://[^\s/?#]+(?:/[^\s?#]*)?")


class InstallError(Exception):
    """The install cannot even start (no repository in the image, a bad master URL)."""


@dataclass(frozen=True)
class Package:
    """One validated package request: `name` or `name=version`."""

    name: str
    version: str | None = None

    def apt_arg(self) -> str:
        return self.name if self.version is None else f"{self.name}={self.version}"


@dataclass(frozen=True)
class MasterRepoInfo:
    """What the image knows of the master's repository: suite, components, key file."""

    suite: str
    components: tuple[str, ...]
    key: Path = IMAGE_REPO_KEY


@dataclass(frozen=True)
class InstallResult:
    ok: bool
    exit_code: int | None
    output_tail: str
    error: str | None


@dataclass(frozen=True)
class AptPaths:
    """apt's private tree for the agent's runs (tmpfs: gone at reboot, like the node)."""

    root: Path = APT_DIR

    @property
    def source_list(self) -> Path:
        return self.root / "sources.list"  # kept empty: the main list apt reads first

    @property
    def source_parts(self) -> Path:
        return self.root / "sources.list.d"

    @property
    def sources_file(self) -> Path:
        return self.source_parts / "livestrap-master.sources"

    @property
    def lists(self) -> Path:
        return self.root / "lists"

    @property
    def cache(self) -> Path:
        return self.root / "archive-cache"


def parse_repo_info(text: str, key: Path = IMAGE_REPO_KEY) -> MasterRepoInfo:
    """IMAGE_REPO_CONFIG's JSON; ValueError when a field is missing or not a plain word."""
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    suite, components = data.get("suite"), data.get("components")
    if not isinstance(suite, str) or not _WORD.fullmatch(suite):
        raise ValueError(f"bad suite {suite!r}")
    if not isinstance(components, list) or not 1 <= len(components) <= 16:
        raise ValueError("components is not a list of 1..16 names")
    for comp in components:
        if not isinstance(comp, str) or not _WORD.fullmatch(comp):
            raise ValueError(f"bad component {comp!r}")
    return MasterRepoInfo(suite, tuple(components), key)


def load_repo_info(config: Path = IMAGE_REPO_CONFIG, key: Path = IMAGE_REPO_KEY) -> MasterRepoInfo:
    """The repository the build baked in; InstallError says what the image lacks."""
    if not config.is_file() or not key.is_file():
        raise InstallError(
            f"this image carries no master repository ({config} or {key} is missing: "
            "built with `agent: false` or by an older livestrap); rebuild it"
        )
    try:
        return parse_repo_info(config.read_text(errors="replace"), key)
    except ValueError as exc:
        raise InstallError(f"{config} is unusable: {exc}") from None


def repo_uri(master_url: str) -> str:
    """`<livestrap.url>/repo` (the master serves its repository there)."""
    url = master_url.strip().rstrip("/")
    if not _URL.fullmatch(url):
        raise InstallError(f"master URL {master_url[:100]!r} is not a plain http(s) URL")
    return f"{url}/repo"


def render_sources(uri: str, info: MasterRepoInfo) -> str:
    """The one deb822 source the agent's apt reads (pure)."""
    return (
        "# livestrap: the master's repository (written by the agent; the only source)\n"
        "Types: deb\n"
        f"URIs: {uri}\n"
        f"Suites: {info.suite}\n"
        f"Components: {' '.join(info.components)}\n"
        f"Signed-By: {info.key}\n"
    )


def apt_options(paths: AptPaths) -> list[str]:
    return [
        "-o", f"Dir::Etc::SourceList={paths.source_list}",
        "-o", f"Dir::Etc::SourceParts={paths.source_parts}/",
        "-o", f"Dir::State::Lists={paths.lists}/",
        "-o", f"Dir::Cache={paths.cache}/",
    ]  # fmt: skip


def update_argv(paths: AptPaths) -> list[str]:
    # Error-Mode=any: an unreachable or badly signed repository fails the update
    # GzipIndexes=false: the lists stay plain text, for listed_versions to read
    return ["apt-get", "-q", *apt_options(paths), "-o", "APT::Update::Error-Mode=any",
            "-o", "Acquire::GzipIndexes=false", "update"]  # fmt: skip


def install_argv(paths: AptPaths, packages: Sequence[Package]) -> list[str]:
    return [
        "apt-get", "-q", "-y", *apt_options(paths), "--no-install-recommends",
        "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
        "install", *(p.apt_arg() for p in packages),
    ]  # fmt: skip


_NOT_FOUND = (
    (re.compile(r"^E: Unable to locate package (\S+)", re.M), "package {0} is not in the "
     "master's repository"),
    (re.compile(r"^E: Package '([^']+)' has no installation candidate", re.M), "package {0} "
     "is not in the master's repository"),
    (re.compile(r"^E: Version '([^']+)' for '([^']+)' was not found", re.M), "version {0} of "
     "{1} is not in the master's repository"),
    (re.compile(r"^E: (?:Could not get lock|Unable to acquire the dpkg frontend lock)", re.M),
     "another apt or dpkg run holds the lock; try again"),
)  # fmt: skip


def explain_failure(step: str, exit_code: int | None, output: str, tool: str | None = None) -> str:
    """One human line for a failed apt-get (or `tool`) run, from its output (bounded)."""
    for pattern, message in _NOT_FOUND:
        m = pattern.search(output)
        if m:
            return message.format(*(g[:100] for g in m.groups()))[:ERROR_CHARS]
    errors = [line for line in output.splitlines() if line.startswith(("E: ", "dpkg: error"))]
    reason = f": {errors[-1].removeprefix('E: ')}" if errors else ""
    where = " from the master's repository" if step == "update" else ""
    return f"{tool or 'apt-get ' + step}{where} failed (exit {exit_code}){reason}"[:ERROR_CHARS]


def listed_versions(lists: Path, names: set[str]) -> dict[str, set[str]]:
    """name -> its versions in the Packages indexes under `lists`, for `names` only (so a
    large index costs no memory); a name absent from every index is absent here."""
    found: dict[str, set[str]] = {}
    for index in sorted(lists.glob(INDEX_GLOB)):
        if not index.is_file():
            continue
        name: str | None = None
        with index.open("rb") as fh:
            for raw in fh.read(MAX_INDEX_BYTES).decode("utf-8", "replace").splitlines():
                if not raw.strip():
                    name = None
                elif raw.startswith("Package:"):
                    name = raw[8:].strip()
                    if name in names:
                        found.setdefault(name, set())
                elif raw.startswith("Version:") and name in found:
                    found[name].add(raw[8:].strip())
    return found


def unlisted(packages: Sequence[Package], listed: dict[str, set[str]]) -> str | None:
    """Why a request is not exactly in the repository, or None when all are."""
    for package in packages:
        versions = listed.get(package.name)
        if versions is None:
            return f"package {package.name} is not in the master's repository"
        if package.version is not None and package.version not in versions:
            return f"version {package.version} of {package.name} is not in the master's repository"
    return None


def write_apt_tree(paths: AptPaths, sources: str) -> None:
    """The private tree: an empty main list, the one source, lists and cache dirs."""
    for folder in (paths.source_parts, paths.lists / "partial", paths.cache / "archives/partial"):
        folder.mkdir(parents=True, exist_ok=True)
    paths.source_list.write_text("")
    for stale in paths.source_parts.iterdir():  # only ever the agent's own file
        if stale != paths.sources_file and stale.is_file():
            stale.unlink()
    paths.sources_file.write_text(sources)


def install(
    packages: Sequence[Package],
    master_url: str,
    runner: Runner,
    *,
    paths: AptPaths | None = None,
    info: MasterRepoInfo | None = None,
    dpkg_updates: Path | None = None,
) -> InstallResult:
    """apt-get update, the names checked, dpkg repaired when it was left interrupted,
    then apt-get install: only from the master's repository."""
    paths = paths or AptPaths()
    try:
        repo = info or load_repo_info()
        write_apt_tree(paths, render_sources(repo_uri(master_url), repo))
    except (InstallError, OSError) as exc:
        return InstallResult(False, None, "", str(exc)[:ERROR_CHARS])
    update = _step(runner, "update", update_argv(paths), UPDATE_TIMEOUT_S)
    if not update.ok:
        return update
    log = update.output_tail
    try:
        missing = unlisted(packages, listed_versions(paths.lists, {p.name for p in packages}))
    except OSError as exc:
        missing = f"cannot read the master's repository index: {exc}"
    if missing is not None:
        return InstallResult(False, None, log, missing[:ERROR_CHARS])
    if interrupted(dpkg_updates or DPKG_UPDATES):
        repair = _step(runner, "repair", ["dpkg", "--configure", "-a"], REPAIR_TIMEOUT_S)
        log = (log + repair.output_tail)[-TAIL_CHARS:]
        if not repair.ok:
            return replace(repair, output_tail=log)
    done = _step(runner, "install", install_argv(paths, packages), INSTALL_TIMEOUT_S)
    return replace(done, output_tail=(log + done.output_tail)[-TAIL_CHARS:])


def interrupted(updates: Path) -> bool:
    """dpkg left a run unfinished (apt-get refuses to start until it is completed)."""
    try:
        return any(updates.iterdir())
    except OSError:  # no such dir: no dpkg state to repair
        return False


def _step(runner: Runner, step: str, argv: list[str], timeout: float) -> InstallResult:
    """One apt-get or dpkg run: its command line and output as the tail, its failure
    explained."""
    run = runner(argv, timeout, APT_ENV)
    tail = f"$ {' '.join(argv)}\n{run.output}"[-TAIL_CHARS:]
    if run.exit_code == 0:
        return InstallResult(True, 0, tail, None)
    tool = "dpkg --configure -a (dpkg was left interrupted)" if step == "repair" else None
    if run.timed_out:
        error = f"{tool or 'apt-get ' + step} timed out after {timeout:.0f} s"
    elif tool:
        error = explain_failure(step, run.exit_code, run.output, tool)
    else:
        error = explain_failure(step, run.exit_code, run.output)
    return InstallResult(False, run.exit_code, tail, error)
