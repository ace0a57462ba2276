"""basetree: the base key, the package delta, the overlay argv and the kept-tree cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from livestrap.builder import basetree
from livestrap.builder.basetree import TreeCache
from livestrap.errors import BuildError
from livestrap.spec import ResolvedSpec

pytestmark = pytest.mark.unit

UPSTREAM = {"http://m/dists/bookworm/InRelease": "ab" * 32}


def spec(tmp_path: Path, **fields: object) -> ResolvedSpec:
    key = tmp_path / "key.asc"
    if not key.exists():
        key.write_text("key")
    base: dict[str, object] = {
        "suite": "bookworm",
        "mirror": "http://m",
        "mirror_key": key,
        "components": ["main"],
        "kernel": "linux-image-amd64",
    }
    return ResolvedSpec(**{**base, **fields})  # type: ignore[arg-type]


def test_base_key_ignores_packages_and_customization(tmp_path: Path) -> None:
    script = tmp_path / "s.sh"
    script.write_text("true")
    plain = basetree.base_key(spec(tmp_path), UPSTREAM)
    custom = spec(
        tmp_path, packages=["tcpdump"], scripts=[script], label="other", compression="xz",
        kernel_options=["quiet"], root_password_hash="$y$j9T$abc",
    )  # fmt: skip
    assert basetree.base_key(custom, UPSTREAM) == plain


@pytest.mark.parametrize(
    "change", [{"suite": "trixie"}, {"mirror": "http://other"}, {"kernel": "linux-image-rt"}]
)
def test_base_key_follows_the_base_inputs(tmp_path: Path, change: dict[str, object]) -> None:
    assert basetree.base_key(spec(tmp_path, **change), UPSTREAM) != basetree.base_key(
        spec(tmp_path), UPSTREAM
    )


def test_base_key_follows_upstream_and_key_files(tmp_path: Path) -> None:
    before = basetree.base_key(spec(tmp_path), UPSTREAM)
    assert basetree.base_key(spec(tmp_path), {k: "cd" * 32 for k in UPSTREAM}) != before
    (tmp_path / "key.asc").write_text("another key")
    assert basetree.base_key(spec(tmp_path), UPSTREAM) != before


def test_delta_and_apt_commands() -> None:
    assert basetree.delta(["a", "b", "c=1"], ["a", "c=2", "d"]) == (["c=2", "d"], ["b", "c=1"])
    assert basetree.apt_commands(["a", "c=2"], ["b", "c=1"]) == (
        "export DEBIAN_FRONTEND=noninteractive && apt-mark auto b && "
        "apt-get install --yes --no-remove a c=2 && apt-get autoremove --purge --yes"
    )


def test_overlay_argv_refuses_option_characters() -> None:
    argv = basetree.overlay_argv(Path("/l"), Path("/u"), Path("/w"), Path("/m"))
    assert argv == ["mount", "-t", "overlay", "overlay", "-o",
                    "lowerdir=/l,upperdir=/u,workdir=/w", "/m"]  # fmt: skip
    with pytest.raises(BuildError):
        basetree.overlay_argv(Path("/l,x"), Path("/u"), Path("/w"), Path("/m"))


def test_local_repo_dirs(tmp_path: Path) -> None:
    assert basetree.local_repo_dirs(spec(tmp_path, mirror="file:///srv/m")) == ["/srv/m"]
    assert basetree.local_repo_dirs(spec(tmp_path)) == []


def tree(tmp_path: Path, name: str) -> Path:
    root = tmp_path / name
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text(name)
    return root


def no_copy(src: Path, dest: Path) -> None:
    raise AssertionError("same filesystem: renamed, never copied")


def test_cache_saves_finds_and_prunes(tmp_path: Path) -> None:
    cache = TreeCache(tmp_path / "trees")
    assert cache.find("k1") is None
    first = cache.save(tree(tmp_path, "one"), "k1", ["a"], no_copy)
    assert not (tmp_path / "one").exists() and (first.root / "etc/hostname").read_text() == "one"
    first.release()
    found = cache.find("k1")
    assert found is not None and found.packages == ["a"] and found.entry == first.entry
    found.release()
    cache.save(tree(tmp_path, "two"), "k2", ["b"], no_copy).release()
    cache.save(tree(tmp_path, "three"), "k1", ["c"], no_copy).release()  # replaces "one"
    assert cache.keys() == ["k1", "k2"] and not first.entry.exists()
    cache.save(tree(tmp_path, "four"), "k3", ["d"], no_copy).release()
    assert cache.keys() == ["k3", "k1"]


def test_a_tree_in_use_is_not_pruned(tmp_path: Path) -> None:
    cache = TreeCache(tmp_path / "trees", keep=1)
    held = cache.save(tree(tmp_path, "one"), "k1", ["a"], no_copy)
    cache.save(tree(tmp_path, "two"), "k2", ["b"], no_copy).release()
    assert held.root.is_dir()
    held.release()
    cache.save(tree(tmp_path, "three"), "k3", ["c"], no_copy).release()
    assert cache.keys() == ["k3"] and not held.entry.exists()
    assert [p.name for p in (tmp_path / "trees").iterdir() if p.name.startswith(".")] == [".lock"]


STATUS = """Package: a
Status: install ok installed
Version: 1

Package: b
Status: deinstall ok config-files
Version: 1
Description: x
 continued: line
"""


def test_installed_and_account_makers(tmp_path: Path) -> None:
    info = tmp_path / "var/lib/dpkg/info"
    info.mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    assert basetree.installed(tmp_path) == {"a"}
    (info / "tcpdump.postinst").write_text("#!/bin/sh\nadduser --system tcpdump\n")
    (info / "libfoo:amd64.list").write_text("/usr/lib/sysusers.d/foo.conf\n")
    (info / "jq.postinst").write_text("#!/bin/sh\nldconfig\n")
    assert basetree.account_makers(tmp_path, {"tcpdump", "libfoo", "jq", "gone"}) == [
        "libfoo",
        "tcpdump",
    ]


def test_drop_run_state(tmp_path: Path) -> None:
    lower, merged = tmp_path / "lower", tmp_path / "merged"
    for root in (lower, merged):
        (root / "var/cache/ldconfig").mkdir(parents=True)
    (merged / "var/cache/ldconfig/aux-cache").write_text("x")
    assert basetree.drop_run_state(lower, merged) == ["var/cache/ldconfig/aux-cache"]
    assert not (merged / "var/cache/ldconfig/aux-cache").exists()
