"""The master's own signed APT repository, and how image builds use it.

It lives in `<data-dir>/repo` (suite `livestrap`, component `main`), signed by a key made
on first use in `<data-dir>/keys/gnupg` (0700; secret key files 0600). Builds add it with
its key as `signed-by` and a pin above the distro's, and install livestrap-agent from it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from livestrap.datadir import DataDir
from livestrap.errors import LivestrapError, RepoError
from livestrap.packaging.agent_deb import BUILT_FROM_SOURCES, agent_version, build_agent_deb
from livestrap.packaging.agent_deb import PACKAGE as AGENT_PACKAGE
from livestrap.packaging.aptrepo import (
    KEY_FILE,
    RepoIdentity,
    ensure_signing_key,
    gpg_session,
    publish,
)
from livestrap.resolve import AgentRepo
from livestrap.run import LineSink, query
from livestrap.spec import Repo

REPO_NAME = "livestrap"
REPO_PRIORITY = 900  # above the distro's 500: the master's agent always wins
IDENTITY = RepoIdentity(suite="livestrap", origin="livestrap", label="livestrap master")
SIGNING_UID = "livestrap master repository <livestrap@localhost>"
# Optional tools the agent uses when present (its package only depends on python3).
AGENT_TOOLS = ("dmidecode", "pciutils", "ethtool")


@dataclass(frozen=True)
class Published:
    package: str
    version: str
    file: Path


class MasterRepo:
    def __init__(self, data_dir: Path) -> None:
        layout = DataDir(data_dir)
        self.root = layout.repo
        self.gnupg_home = layout.gnupg
        self.key_file = self.root / KEY_FILE
        self._lock_file = layout.repo_lock

    def is_published(self) -> bool:
        return (self.root / "dists" / IDENTITY.suite / "InRelease").is_file()

    def publish(self, debs: list[Path] | None, *, log: LineSink) -> list[Published]:
        """Add .debs (default: a fresh build of the agent), re-index and re-sign."""
        with self._locked(), tempfile.TemporaryDirectory(prefix="livestrap-publish-") as tmp:
            if not debs:
                debs = [build_agent_deb(Path(tmp), log=log)]
            published = [inspect_deb(deb, log=log) for deb in debs]
            with gpg_session(self.gnupg_home):
                fpr = ensure_signing_key(self.gnupg_home, SIGNING_UID, log=log)
                _tighten_key_modes(self.gnupg_home)
                publish(self.root, debs, IDENTITY, gnupg_home=self.gnupg_home, key_fpr=fpr,
                        log=log)  # fmt: skip
            return published

    def published_version(self, package: str) -> str | None:
        """The version of `package` in this repository's index, or None."""
        index = self.root / "dists" / IDENTITY.suite / IDENTITY.component
        name: str | None = None
        for packages in sorted(index.glob("binary-*/Packages")):
            for line in packages.read_text(errors="replace").splitlines():
                if line.startswith("Package:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("Version:") and name == package:
                    return line.split(":", 1)[1].strip()
        return None

    def agent_is_stale(self) -> bool:
        """No agent here, or one this livestrap built from other agent sources (an
        upgraded master: its images must get its own agent). An agent an operator
        published under a version of their own is theirs: left alone."""
        published = self.published_version(AGENT_PACKAGE)
        if published is None:
            return True
        return bool(BUILT_FROM_SOURCES.search(published)) and published != agent_version()

    def needs_agent(self) -> bool:
        """Nothing published yet, or not this livestrap's agent (agent_is_stale)."""
        return not self.is_published() or self.agent_is_stale()

    def ensure_published(self, *, log: LineSink) -> None:
        """Publish the agent on first use, and again when this livestrap's agent is not
        the one published, so every image carries the agent of the master that built it."""
        if self.needs_agent():
            self.publish(None, log=log)

    def as_repo(self) -> Repo:
        return Repo(
            name=REPO_NAME,
            uri=f"copy://{self.root}",  # copied into apt's cache, so dpkg in the chroot sees it
            suite=IDENTITY.suite,
            components=[IDENTITY.component],
            priority=REPO_PRIORITY,
            key=self.key_file,
        )

    def agent_repo(self) -> AgentRepo:
        """This repository, and the agent with its optional tools, for resolve()."""
        return AgentRepo(self.as_repo(), (*AGENT_TOOLS, AGENT_PACKAGE))

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self._lock_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock_file.open("w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            yield


def inspect_deb(deb: Path, *, log: LineSink) -> Published:
    """Refuse anything that is not a readable binary package; return its name and version."""
    if not deb.is_file() or deb.suffix != ".deb":
        raise RepoError(f"{deb}: not a .deb file")
    try:
        fields = query(
            ["dpkg-deb", "--show", "--showformat=${Package}\\t${Version}\\n", str(deb)],
            stage="repo",
            log=log,
        )
    except LivestrapError:
        raise RepoError(f"{deb}: not a valid Debian package (dpkg-deb cannot read it)") from None
    name, _, version = fields[0].partition("\t") if fields else ("", "", "")
    if not name or not version:
        raise RepoError(f"{deb}: no package name or version in its control file")
    return Published(name, version, deb)


def _tighten_key_modes(home: Path) -> None:
    os.chmod(home, 0o700)
    for path in home.rglob("*"):
        if path.is_file():
            path.chmod(0o600)
