"""A real build from the host mirror with two signed repos on ONE host pinned against each
other, and a real-apt check of the same pins without a build.

The issue's case: both repos are served from the same 127.0.0.1 folder, with the same
suite and component, different Origin and Label, and the test package in both at
different versions. The repo with the higher priority has the LOWER version, so only a
pin that tells the two apart (derived from their Release files) installs it. One build
(alpha pinned high) serves the image checks; the swapped priorities are checked with
apt-get update + apt-cache policy against the same repos (signatures checked), which
costs seconds instead of a second build.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import (
    TEST_CACHE,
    mounts_below,
    require_build_tools,
    require_commands,
    serve_directory,
)
from livestrap.apt import preferences_files, render_sources, spec_sources
from livestrap.builder.fingerprint import fetch_releases
from livestrap.builder.pipeline import build
from livestrap.packaging.aptrepo import RepoIdentity, ensure_signing_key, gpg_session, publish
from livestrap.packaging.deb import DebControl, build_deb
from livestrap.release import parse_release
from livestrap.resolve import resolve
from livestrap.spec import ResolvedSpec, load_spec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata, read_metadata, verify_artifacts

pytestmark = pytest.mark.integration

PKG = "livestrap-pintest"
SUITE = "product"  # the same suite (and component) for both repos
# name -> (version of PKG in it, Origin, Label)
REPOS = {"alpha": ("1.0", "Alpha", "Alpha Tools"), "beta": ("2.0", "Beta", "Beta Tools")}
HIGH, LOW = 990, 100
CANDIDATE = re.compile(r"^\s*Candidate:\s*(\S+)\Z")


@dataclass
class Served:
    tmp: Path
    url: str


@dataclass
class Built:
    meta: ImageMetadata
    log: str
    store: ImageStore


def make_repo(tmp: Path, name: str, log: list[str]) -> Path:
    """A one-package repo signed with its own key; returns the repo root."""
    version, origin, label = REPOS[name]
    tree = tmp / f"tree-{name}"
    (tree / "usr/share" / PKG).mkdir(parents=True)
    (tree / "usr/share" / PKG / "version").write_text(f"{version}\n")
    deb = build_deb(
        tree,
        DebControl(package=PKG, version=version, description=f"pinning test package ({name})"),
        tmp / f"debs-{name}",
        log=log.append,
    )
    root = tmp / "www" / name
    home = tmp / f"gnupg-{name}"
    with gpg_session(home):
        fpr = ensure_signing_key(home, f"{name} test repo <{name}@localhost>", log=log.append)
        publish(root, [deb], RepoIdentity(suite=SUITE, origin=origin, label=label),
                gnupg_home=home, key_fpr=fpr, log=log.append)  # fmt: skip
    return root


def pin_spec(served: Served, high: str) -> ResolvedSpec:
    """The spec with repo `high` at priority HIGH and the other at LOW."""
    repos = [
        {"name": name, "uri": f"{served.url}/{name}", "suite": SUITE,
         "priority": HIGH if name == high else LOW, "key": f"www/{name}/key.asc"}
        for name in REPOS
    ]  # fmt: skip
    path = served.tmp / f"{high}-high.yaml"
    path.write_text(yaml.safe_dump({"label": "pintest", "packages": [PKG], "repos": repos}))
    return resolve(load_spec(path))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    require_commands("gpg", "dpkg-deb", "apt-get", "apt-cache")
    tmp = tmp_path_factory.mktemp("pinning")
    log: list[str] = []
    for name in REPOS:
        make_repo(tmp, name, log)
    with serve_directory(tmp / "www") as url:
        yield Served(tmp, url)


@pytest.fixture(scope="module")
def built(served: Served) -> Built:
    require_build_tools()
    store = ImageStore(served.tmp / "data")
    log_path = served.tmp / "alpha-high.log"
    meta = build(pin_spec(served, "alpha"), store, log_path=log_path, cache_dir=TEST_CACHE)
    return Built(meta, log_path.read_text(), store)


def apt_candidate(spec: ResolvedSpec, root: Path) -> str:
    """PKG's candidate version as real apt sees the spec's repos with the pins the build
    derives: a private Dir, the rendered sources and preferences, signatures checked."""
    read = lambda p: Path(p).read_bytes()  # noqa: E731
    sources = spec_sources(spec, read)
    releases = fetch_releases(sources)
    assert releases is not None
    fields = {url: parse_release(data) for url, data in releases.items()}
    etc = root / "etc/apt"
    for sub in ("sources.list.d", "preferences.d", "apt.conf.d"):
        (etc / sub).mkdir(parents=True)
    for sub in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg"):
        (root / sub).mkdir(parents=True)
    (etc / "sources.list").write_text("")
    (root / "var/lib/dpkg/status").write_text("")
    repos_only = [s for s in sources if s.name in REPOS]  # the distro's indexes are not needed
    (etc / "sources.list.d/livestrap.sources").write_text(render_sources(repos_only))
    for name, text in preferences_files(spec, fields).items():
        (etc / "preferences.d" / name).write_text(text)
    options = [
        f"Dir={root}",
        f"Dir::Etc={etc}",
        f"Dir::Etc::sourcelist={etc / 'sources.list'}",
        f"Dir::Etc::sourceparts={etc / 'sources.list.d'}",
        f"Dir::Etc::preferences={etc / 'preferences'}",
        f"Dir::Etc::preferencesparts={etc / 'preferences.d'}",
        f"Dir::Etc::parts={etc / 'apt.conf.d'}",
        f"Dir::State={root / 'var/lib/apt'}",
        f"Dir::State::status={root / 'var/lib/dpkg/status'}",
        f"Dir::Cache={root / 'var/cache/apt'}",
        "APT::Architecture=amd64",
        "APT::Architectures=amd64",
        "APT::Sandbox::User=root",
    ]
    argv = [a for opt in options for a in ("-o", opt)]
    update = subprocess.run(
        ["apt-get", *argv, "update"], capture_output=True, text=True, check=False, timeout=120
    )
    assert update.returncode == 0, update.stdout + update.stderr
    assert "NO_PUBKEY" not in update.stderr and "not signed" not in update.stderr
    assert not re.search(r"^(W|E):", update.stderr, re.M), update.stderr
    policy = subprocess.run(
        ["apt-cache", *argv, "policy", PKG], capture_output=True, text=True, check=True
    ).stdout
    found = [m.group(1) for line in policy.splitlines() if (m := CANDIDATE.match(line))]
    assert len(found) == 1, policy
    return found[0]


def test_pins_come_from_the_release_files(served: Served) -> None:
    spec = pin_spec(served, "alpha")
    releases = fetch_releases(spec_sources(spec, lambda p: Path(p).read_bytes()))
    assert releases is not None
    files = preferences_files(spec, {u: parse_release(d) for u, d in releases.items()})
    assert files["livestrap-alpha.pref"] == (
        f"# livestrap: repo alpha\nPackage: *\nPin: release o=Alpha\nPin-Priority: {HIGH}\n"
    )
    assert files["livestrap-beta.pref"] == (
        f"# livestrap: repo beta\nPackage: *\nPin: release o=Beta\nPin-Priority: {LOW}\n"
    )


@pytest.mark.parametrize(("high", "expected"), [("alpha", "1.0"), ("beta", "2.0")])
def test_real_apt_candidate_follows_the_priorities(
    served: Served, tmp_path: Path, high: str, expected: str
) -> None:
    """The higher-priority repo wins although its version may be the lower one."""
    assert apt_candidate(pin_spec(served, high), tmp_path / "apt") == expected


def test_higher_priority_repo_wins(built: Built) -> None:
    assert built.meta.packages[PKG] == "1.0"  # alpha: priority 990, the lower version


def test_metadata_is_complete(built: Built) -> None:
    image_dir = built.store.path(built.meta.id)
    meta = read_metadata(image_dir)
    assert meta == built.meta
    assert verify_artifacts(image_dir, meta) == []
    assert meta.kernel_version and meta.spec["repos"][0]["priority"] == HIGH
    assert len(meta.spec_sha256) == 64
    for name in ("live-boot", "python3", "linux-image-amd64", "systemd-sysv"):
        assert name in meta.packages
    assert not (image_dir.parent.parent / "tmp").exists() or not any(
        p.name.startswith("build-") for p in (image_dir.parent.parent / "tmp").iterdir()
    )


def test_image_contents(built: Built) -> None:
    image_dir = built.store.path(built.meta.id)
    squash = str(image_dir / "root.squashfs")
    listing = subprocess.run(
        ["unsquashfs", "-l", "-d", "", squash], capture_output=True, text=True, check=True
    ).stdout.split()
    assert "/boot" not in listing and "/usr/sbin/init" in listing
    assert "/etc/apt/preferences.d/livestrap-alpha.pref" in listing

    def cat(path: str) -> str:
        return subprocess.run(
            ["unsquashfs", "-cat", squash, path], capture_output=True, text=True, check=True
        ).stdout

    assert cat("etc/machine-id") == ""
    assert "\nroot:!*:" in "\n" + cat("etc/shadow")
    assert f"Pin: release o=Alpha\nPin-Priority: {HIGH}" in cat(
        "etc/apt/preferences.d/livestrap-alpha.pref"
    )
    assert f"Pin: release o=Beta\nPin-Priority: {LOW}" in cat(
        "etc/apt/preferences.d/livestrap-beta.pref"
    )
    assert cat(f"usr/share/{PKG}/version") == "1.0\n"
    initrd = subprocess.run(
        ["lsinitramfs", str(image_dir / "initrd.img")], capture_output=True, text=True, check=True
    ).stdout
    for needed in ("scripts/live", "bin/ipconfig", "bin/busybox", "squashfs.ko", "overlay.ko"):
        assert needed in initrd


def test_signatures_were_checked(built: Built) -> None:
    log = built.log
    assert "Trusted: yes" not in log and "Signed-By:" in log
    assert "NO_PUBKEY" not in log and "is not signed" not in log


def test_no_mount_left(built: Built) -> None:
    assert mounts_below(built.store.data_dir) == []


def test_sbom_names_each_package_and_its_archive(built: Built) -> None:
    """sbom.cdx.json: every package of metadata.yaml, the pinned-up repo's package
    credited to that repo, the distro's to the mirror with its Release Origin."""
    doc = json.loads(built.store.sbom(built.meta.id))
    comps = {c["name"]: c for c in doc["components"]}
    assert {n: c["version"] for n, c in comps.items()} == built.meta.packages
    props = {n: {p["name"]: p["value"] for p in c["properties"]} for n, c in comps.items()}
    assert props[PKG]["livestrap:archive:uri"].endswith("/alpha")
    assert props[PKG]["livestrap:archive:origin"] == REPOS["alpha"][1]
    assert [n for n, p in props.items() if "livestrap:archive:uri" not in p] == []
    assert props["libc6"]["livestrap:source"] == "glibc"
    assert props["libc6"]["livestrap:archive:origin"] == "Debian"
    assert comps["libc6"]["purl"].startswith("pkg:deb/debian/libc6@")
