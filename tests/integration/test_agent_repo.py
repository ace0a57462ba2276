"""The agent .deb from the master's signed repo, installed by apt in a real chroot."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import TEST_CACHE, require_build_tools, serve_directory
from livestrap.apt import AptSource, armor_key, render_sources
from livestrap.builder.customize import chroot_argv
from livestrap.builder.rootfs import copy_debs, private_ns
from livestrap.packaging.agent_deb import build_agent_deb
from livestrap.packaging.master_repo import IDENTITY, MasterRepo
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec

pytestmark = pytest.mark.integration


def test_same_version_builds_the_same_bytes(tmp_path: Path) -> None:
    a = build_agent_deb(tmp_path / "a", log=lambda _: None)
    b = build_agent_deb(tmp_path / "b", log=lambda _: None)
    assert (
        a.name == b.name and a.name.startswith("livestrap-agent_") and a.name.endswith("_all.deb")
    )
    assert a.read_bytes() == b.read_bytes()
    fields = subprocess.run(
        ["dpkg-deb", "--field", str(a), "Depends", "Architecture"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Depends: python3\n" in fields and "Architecture: all" in fields
    files = subprocess.run(["dpkg-deb", "--contents", str(a)], capture_output=True, text=True,
                           check=True).stdout  # fmt: skip
    assert "./lib/systemd/system/livestrap-agent.service" in files
    assert "./usr/lib/python3/dist-packages/livestrap/agent/report.py" in files


@pytest.fixture(scope="module")
def chroot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A minimal Debian (apt variant) from the host mirror, made with mmdebstrap."""
    require_build_tools()
    root = tmp_path_factory.mktemp("chroot") / "root"
    spec = resolve(BuildSpec())
    cache = TEST_CACHE / "apt-archives"
    cache.mkdir(parents=True, exist_ok=True)
    archives = '"$1/var/cache/apt/archives"'
    subprocess.run(
        private_ns(
            [
                "mmdebstrap", "--mode=root", "--variant=apt", "--skip=essential/unlink",
                "--include=python3",
                "--aptopt=Acquire::Languages \"none\"",
                f"--setup-hook=mkdir -p {archives} && {copy_debs(str(cache), archives)}",
                f"--customize-hook={copy_debs(archives, str(cache))}",
                spec.suite or "", str(root), f"deb [signed-by={spec.mirror_key}] {spec.mirror} "
                f"{spec.suite} main",
            ]
        ),
        check=True, capture_output=True,
    )  # fmt: skip
    yield root


def apt_in(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        chroot_argv(root, ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", *args]),
        capture_output=True,
        text=True,
    )


def point_at_master_repo(root: Path, url: str, key: Path) -> None:
    (root / "etc/apt/sources.list").write_text("")
    source = AptSource("livestrap", f"{url}/repo", (IDENTITY.suite,), ("main",),
                       armor_key(key.read_bytes()))  # fmt: skip
    (root / "etc/apt/sources.list.d/livestrap.sources").write_text(render_sources([source]))


def test_agent_installs_from_the_signed_repo(chroot: Path, tmp_path: Path) -> None:
    repo = MasterRepo(tmp_path / "data")
    published = repo.publish(None, log=lambda _: None)
    assert published[0].package == "livestrap-agent"
    assert oct(repo.gnupg_home.stat().st_mode & 0o777) == "0o700"
    with serve_directory(tmp_path / "data") as url:
        point_at_master_repo(chroot, url, repo.key_file)
        update = apt_in(chroot, "update")
        assert update.returncode == 0, update.stdout + update.stderr
        install = apt_in(chroot, "install", "-y", "--no-install-recommends", "livestrap-agent")
        assert install.returncode == 0, install.stdout + install.stderr
    wants = chroot / "etc/systemd/system/multi-user.target.wants/livestrap-agent.service"
    assert wants.is_symlink()
    out = subprocess.run(
        chroot_argv(chroot, ["livestrap-agent", "--print"]), capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    facts = json.loads(out.stdout)
    assert facts["facts"]["memory"]["total"] > 0


def test_tampered_release_is_refused(chroot: Path, tmp_path: Path) -> None:
    repo = MasterRepo(tmp_path / "data")
    repo.publish(None, log=lambda _: None)
    inrelease = repo.root / "dists" / IDENTITY.suite / "InRelease"
    inrelease.write_text(inrelease.read_text().replace("livestrap master", "livestrap evil", 1))
    (repo.root / "dists" / IDENTITY.suite / "Release").write_text("tampered\n")
    with serve_directory(tmp_path / "data") as url:
        point_at_master_repo(chroot, url, repo.key_file)
        update = apt_in(chroot, "update")
    text = update.stdout + update.stderr
    assert update.returncode != 0 or "W:" in text or "E:" in text, text
    assert "signature" in text.lower() or "not signed" in text.lower(), text


def test_publishing_the_same_package_again_changes_nothing(tmp_path: Path) -> None:
    """Same bytes, same signed InRelease: every build fingerprint that names it still holds."""
    repo = MasterRepo(tmp_path / "data")
    deb = build_agent_deb(tmp_path / "debs", log=lambda _: None)
    repo.publish([deb], log=lambda _: None)
    in_release = repo.root / "dists" / IDENTITY.suite / "InRelease"
    first = in_release.read_bytes()
    repo.publish([deb], log=lambda _: None)
    assert in_release.read_bytes() == first
