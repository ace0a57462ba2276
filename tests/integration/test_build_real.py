"""Real builds from the host mirror with two local signed repos pinned against each other.

One module-scoped pair of builds serves several checks: the first (repo alpha pinned
above beta) is the minimal real build; the second swaps the priorities and must pick
the other version while downloading nothing again from the mirror.
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

from helpers import TEST_CACHE, mounts_below, require_build_tools, serve_directory
from livestrap.builder.pipeline import build
from livestrap.packaging.aptrepo import RepoIdentity, ensure_signing_key, gpg_session, publish
from livestrap.packaging.deb import DebControl, build_deb
from livestrap.resolve import resolve
from livestrap.spec import load_spec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import ImageMetadata, read_metadata, verify_artifacts

pytestmark = pytest.mark.integration

PKG = "livestrap-pintest"
# A downloaded .deb shows in apt's output as "Get:N URI suite/comp arch NAME arch VERSION [size]".
DEB_DOWNLOAD = re.compile(r"^\[ *[\d.]+\] Get:\d+ (\S+) \S+ \S+ \S+ \S+ \S+ \[")


@dataclass
class Built:
    meta: ImageMetadata
    log: str
    store: ImageStore


def make_repo(tmp: Path, name: str, version: str, log: list[str]) -> Path:
    """A one-package repo signed with its own key; returns the repo root."""
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
        publish(root, [deb], RepoIdentity(suite=name, origin=name, label=name),
                gnupg_home=home, key_fpr=fpr, log=log.append)  # fmt: skip
    return root


def write_spec(path: Path, url: str, alpha: int, beta: int) -> Path:
    spec = {
        "label": "pintest",
        "packages": [PKG],
        "repos": [
            {"name": "alpha", "uri": f"{url}/alpha", "suite": "alpha", "priority": alpha,
             "key": "www/alpha/key.asc"},
            {"name": "beta", "uri": f"{url}/beta", "suite": "beta", "priority": beta,
             "key": "www/beta/key.asc"},
        ],
    }  # fmt: skip
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Built]]:
    require_build_tools()
    tmp = tmp_path_factory.mktemp("pinning")
    log: list[str] = []
    make_repo(tmp, "alpha", "1.0", log)
    make_repo(tmp, "beta", "2.0", log)
    store = ImageStore(tmp / "data")
    results: dict[str, Built] = {}
    with serve_directory(tmp / "www") as url:
        for name, (alpha, beta) in {"alpha-high": (700, 600), "beta-high": (600, 700)}.items():
            spec = resolve(load_spec(write_spec(tmp / f"{name}.yaml", url, alpha, beta)))
            log_path = tmp / f"{name}.log"
            meta = build(spec, store, log_path=log_path, cache_dir=TEST_CACHE)
            results[name] = Built(meta, log_path.read_text(), store)
    yield results


def test_higher_priority_repo_wins(builds: dict[str, Built]) -> None:
    assert builds["alpha-high"].meta.packages[PKG] == "1.0"


def test_swapped_priorities_pick_the_other_version(builds: dict[str, Built]) -> None:
    assert builds["beta-high"].meta.packages[PKG] == "2.0"


def test_metadata_is_complete(builds: dict[str, Built]) -> None:
    built = builds["alpha-high"]
    image_dir = built.store.path(built.meta.id)
    meta = read_metadata(image_dir)
    assert meta == built.meta
    assert verify_artifacts(image_dir, meta) == []
    assert meta.kernel_version and meta.spec["repos"][0]["priority"] == 700
    assert len(meta.spec_sha256) == 64
    for name in ("live-boot", "python3", "linux-image-amd64", "systemd-sysv"):
        assert name in meta.packages
    assert not (image_dir.parent.parent / "tmp").exists() or not any(
        p.name.startswith("build-") for p in (image_dir.parent.parent / "tmp").iterdir()
    )


def test_image_contents(builds: dict[str, Built]) -> None:
    built = builds["alpha-high"]
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
    assert "Pin: release a=alpha\nPin-Priority: 700" in cat(
        "etc/apt/preferences.d/livestrap-alpha.pref"
    )
    assert cat(f"usr/share/{PKG}/version") == "1.0\n"
    initrd = subprocess.run(
        ["lsinitramfs", str(image_dir / "initrd.img")], capture_output=True, text=True, check=True
    ).stdout
    for needed in ("scripts/live", "bin/ipconfig", "bin/busybox", "squashfs.ko", "overlay.ko"):
        assert needed in initrd


def test_signatures_were_checked(builds: dict[str, Built]) -> None:
    log = builds["alpha-high"].log
    assert "Trusted: yes" not in log and "Signed-By:" in log
    assert "NO_PUBKEY" not in log and "is not signed" not in log


def test_second_build_downloads_no_package_from_the_mirror(builds: dict[str, Built]) -> None:
    mirror = builds["beta-high"].meta.spec["mirror"]
    fetched = [
        m.group(0)
        for line in builds["beta-high"].log.splitlines()
        if (m := DEB_DOWNLOAD.match(line)) and m.group(1).startswith(mirror)
    ]
    assert fetched == []


def test_no_mount_left(builds: dict[str, Built]) -> None:
    assert mounts_below(builds["alpha-high"].store.data_dir) == []


def test_sbom_names_each_package_and_its_archive(builds: dict[str, Built]) -> None:
    """sbom.cdx.json (helper B2): every package of metadata.yaml, the pinned-up repo's
    package credited to that repo, the distro's to the mirror with its Release Origin."""
    for name, repo in (("alpha-high", "alpha"), ("beta-high", "beta")):
        built = builds[name]
        doc = json.loads(built.store.sbom(built.meta.id))
        comps = {c["name"]: c for c in doc["components"]}
        assert {n: c["version"] for n, c in comps.items()} == built.meta.packages
        props = {n: {p["name"]: p["value"] for p in c["properties"]} for n, c in comps.items()}
        assert props[PKG]["livestrap:archive:uri"].endswith(f"/{repo}")
        assert props[PKG]["livestrap:archive:origin"] == repo
        assert [n for n, p in props.items() if "livestrap:archive:uri" not in p] == []
        assert props["libc6"]["livestrap:source"] == "glibc"
        assert props["libc6"]["livestrap:archive:origin"] == "Debian"
        assert comps["libc6"]["purl"].startswith("pkg:deb/debian/libc6@")
