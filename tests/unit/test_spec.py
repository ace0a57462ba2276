"""spec: validation with field paths in every message, YAML loading and default resolution."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from livestrap.errors import SpecError
from livestrap.resolve import resolve
from livestrap.spec import (
    BASE_PACKAGES,
    BuildSpec,
    ResolvedSpec,
    load_spec,
    parse_spec,
    spec_to_yaml,
)

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
APT = FIXTURES / "apt"
ARCHIVE_KEY = FIXTURES / "keys" / "archive-test.asc"
REPO_KEY = FIXTURES / "keys" / "repo-test.asc"
DEBIAN = "http://mirror.example.test/debian"
UBUNTU = "http://ubuntu-mirror.example.test/ubuntu"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleKeyDataOnly0123456789abcdef op@example.test"
UBUNTU_KEYRING = Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg")


def repo(**fields: Any) -> dict[str, Any]:
    """A valid repo mapping; `fields` override or (with None) remove keys."""
    data: dict[str, Any] = {
        "name": "acme",
        "uri": "http://acme.example.test/apt",
        "suite": "stable",
        "key": str(REPO_KEY),
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v is not None}


def spec_error(data: Any, base_dir: Path = FIXTURES) -> str:
    with pytest.raises(SpecError) as exc:
        parse_spec(data, base_dir=base_dir)
    return str(exc.value)


# -- valid specs ----------------------------------------------------------------------------


def test_minimal_spec_is_valid() -> None:
    data: dict[str, Any] | None
    for data in ({}, None):
        spec = parse_spec(data)
        assert spec == BuildSpec()
        assert spec.label == "livestrap"
        assert spec.distro == "debian"
        assert spec.arch == "amd64"
        assert (spec.suite, spec.mirror, spec.mirror_key, spec.components, spec.kernel) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert spec.repos == []
        assert spec.packages == []
        assert spec.compression == "zstd"
        assert spec.agent is True


def test_full_spec_is_valid_and_normalised() -> None:
    spec = parse_spec(
        {
            "label": "disco-1.2_a",
            "distro": "debian",
            "suite": "bookworm",
            "mirror": DEBIAN + "/",
            "mirror_key": "keys/archive-test.asc",
            "components": ["main", "contrib"],
            "repos": [
                repo(priority=1000, components=["main", "extra"], pin="origin acme.example.test"),
                repo(name="local", uri="file:///srv/repo/", key=None, trusted=True, priority=1),
            ],
            "packages": [
                "openssh-server",
                "libstdc++6",
                "python3.11",
                "foo=1:2.0-3~bpo12+1",
                "openssh-server",
            ],
            "kernel": "linux-image-cloud-amd64",
            "kernel_options": ["console=ttyS0,115200", "quiet", "net.ifnames=0"],
            "ssh_authorized_keys": [f"  {SSH_KEY}\n"],
            "root_password_hash": "$y$j9T$abcdefgh$ABCDEFGHIJ0123456789./",
            "compression": "xz",
            "agent": False,
        },
        base_dir=FIXTURES,
    )
    assert spec.mirror == DEBIAN  # trailing '/' stripped
    assert spec.mirror_key == ARCHIVE_KEY  # relative to base_dir, made absolute
    assert spec.repos[0].key == REPO_KEY
    assert spec.repos[0].priority == 1000
    assert spec.repos[1].uri == "file:///srv/repo"
    assert spec.repos[1].key is None
    assert spec.packages == ["openssh-server", "libstdc++6", "python3.11", "foo=1:2.0-3~bpo12+1"]
    assert spec.ssh_authorized_keys == [SSH_KEY]


@pytest.mark.parametrize(
    "url", ["http://mirror.example.test", "https://mirror.example.test:8443/x", "file:///srv/r"]
)
def test_accepted_urls(url: str) -> None:
    assert parse_spec({"mirror": url}).mirror == url


# -- invalid specs: every message names the field path ---------------------------------------


def test_unknown_top_level_key() -> None:
    msg = spec_error({"mirorr": DEBIAN})
    assert msg.splitlines() == ["spec is invalid:", "  mirorr: unknown key"]


def test_unknown_key_inside_repo() -> None:
    msg = spec_error({"repos": [repo(), repo(name="other", prio=5)]})
    assert "  repos[1].prio: unknown key" in msg.splitlines()


def test_every_problem_is_reported_at_once() -> None:
    msg = spec_error({"label": "Bad Label", "compression": "gzip", "oops": 1})
    lines = msg.splitlines()
    assert lines[0] == "spec is invalid:"
    assert {line.split(":")[0].strip() for line in lines[1:]} == {"label", "compression", "oops"}


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://mirror.example.test/debian", "is not an http://, https://, file:// or copy:// URL"),
        ("mirror.example.test/debian", "is not an http://, https://, file:// or copy:// URL"),
        ("http:///debian", "has no host"),
        ("https://", "has no host"),
        ("http://mirror.example.test/de bian", "contains white space"),
        ("http://mirror.example.test/debian\t", "contains white space"),
        ("file:relative/path", "needs an absolute path"),
    ],
)
def test_bad_urls(url: str, reason: str) -> None:
    assert f"  mirror: {url!r} {reason}" in spec_error({"mirror": url}).splitlines()
    msg = spec_error({"repos": [repo(uri=url)]})
    assert f"  repos[0].uri: {url!r} {reason}" in msg.splitlines()


@pytest.mark.parametrize("priority", [0, 1001, -1])
def test_pin_priority_out_of_range(priority: int) -> None:
    msg = spec_error({"repos": [repo(priority=priority)]})
    assert "repos[0].priority:" in msg
    assert ("greater than or equal to 1" if priority < 1 else "less than or equal to 1000") in msg


@pytest.mark.parametrize("priority", [1, 1000])
def test_pin_priority_bounds_accepted(priority: int) -> None:
    assert parse_spec({"repos": [repo(priority=priority)]}).repos[0].priority == priority


def test_bad_pin_expression() -> None:
    msg = spec_error({"repos": [repo(pin="o=Acme")]})
    assert "repos[0].pin: 'o=Acme' is not an APT pin" in msg


def test_missing_key_file() -> None:
    msg = spec_error({"repos": [repo(key="keys/no-such-key.asc")]})
    assert f"repos[0].key: file {FIXTURES / 'keys/no-such-key.asc'} does not exist" in msg


def test_missing_mirror_key_file(tmp_path: Path) -> None:
    msg = spec_error({"mirror_key": "missing.gpg"}, base_dir=tmp_path)
    assert f"mirror_key: file {tmp_path.resolve() / 'missing.gpg'} does not exist" in msg


def test_key_must_be_a_file_not_a_directory() -> None:
    assert "repos[0].key: file" in spec_error({"repos": [repo(key="keys")]})


def test_repo_without_key_must_be_trusted() -> None:
    msg = spec_error({"repos": [repo(key=None)]})
    assert "  repos[0]: repo 'acme' needs `key`" in msg
    assert "trusted: true" in msg
    assert parse_spec({"repos": [repo(key=None, trusted=True)]}).repos[0].trusted


@pytest.mark.parametrize(
    "name", ["Foo", "a", "-dash", "foo bar", "foo_bar", "foo=", "foo=1 2", "über", ""]
)
def test_malformed_package_names(name: str) -> None:
    msg = spec_error({"packages": ["curl", name]})
    assert f"  packages: malformed package names: {name!r}" in msg.splitlines()


def test_malformed_kernel_package() -> None:
    assert "  kernel: malformed package name 'Linux'" in spec_error({"kernel": "Linux"})


@pytest.mark.parametrize(
    "key", ["not a key", "ssh-ed25519", "ssh-foo AAAA", "AAAAC3NzaC1lZDI1NTE5 comment", ""]
)
def test_bad_ssh_key(key: str) -> None:
    assert "ssh_authorized_keys: not an OpenSSH public key" in spec_error(
        {"ssh_authorized_keys": [SSH_KEY, key]}
    )


@pytest.mark.parametrize("value", ["hunter2", "$6$", "$6$salt:hash", "$6$has space", "!*", ""])
def test_bad_password_hash(value: str) -> None:
    msg = spec_error({"root_password_hash": value})
    assert "  root_password_hash: must be a crypt(3) hash" in msg


def test_duplicate_repo_names() -> None:
    msg = spec_error({"repos": [repo(), repo(suite="testing"), repo(name="b"), repo(name="b")]})
    assert "  (top level): repo names must be unique; repeated: acme, b" in msg.splitlines()


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"label": "UPPER"}, "label"),
        ({"distro": "fedora"}, "distro"),
        ({"arch": "arm64"}, "arch"),
        ({"suite": "-bad"}, "suite"),
        ({"components": []}, "components"),
        ({"components": ["main", "bad comp"]}, "components"),
        ({"kernel_options": ['quiet="x"']}, "kernel_options"),
        ({"compression": "gzip"}, "compression"),
        ({"extra_dirs": ["no-such-dir"]}, "extra_dirs"),
        ({"scripts": ["no-such-script.sh"]}, "scripts"),
        ({"repos": [repo(name="Bad")]}, "repos[0].name"),
        ({"repos": [repo(suite="")]}, "repos[0].suite"),
        ({"repos": [repo(components=[])]}, "repos[0].components"),
        ({"repos": "acme"}, "repos"),
    ],
)
def test_other_invalid_fields_are_named(data: dict[str, Any], field: str) -> None:
    assert f"  {field}" in spec_error(data)


def test_spec_must_be_a_mapping() -> None:
    assert spec_error(["mirror", DEBIAN]) == "spec must be a mapping of keys to values"


# -- load_spec --------------------------------------------------------------------------------


def test_load_spec_resolves_paths_against_the_spec_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "specs"
    (folder / "keys").mkdir(parents=True)
    (folder / "keys/repo.asc").write_bytes(REPO_KEY.read_bytes())
    (folder / "overlay").mkdir()
    (folder / "setup.sh").write_text("#!/bin/sh\n")
    path = folder / "spec.yaml"
    path.write_text(
        "mirror_key: keys/repo.asc\n"
        "repos:\n"
        "  - name: acme\n"
        "    uri: http://acme.example.test/apt\n"
        "    suite: stable\n"
        "    key: ./keys/repo.asc\n"
        "extra_dirs: [overlay]\n"
        "scripts: [setup.sh]\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    spec = load_spec(Path(os.path.relpath(path, elsewhere)))  # a relative path to the spec
    real = folder.resolve()
    assert spec.mirror_key == real / "keys/repo.asc"
    assert spec.repos[0].key == real / "keys/repo.asc"
    assert spec.extra_dirs == [real / "overlay"]
    assert spec.scripts == [real / "setup.sh"]


def test_load_spec_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("packages: [curl\nlabel: x\n")
    with pytest.raises(SpecError, match="is not valid YAML") as exc:
        load_spec(path)
    assert str(path) in str(exc.value)


def test_load_spec_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"cannot read spec .*nope\.yaml"):
        load_spec(tmp_path / "nope.yaml")


def test_load_spec_error_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("repos:\n  - {name: a, uri: http://a.example.test, suite: s, priority: 0}\n")
    with pytest.raises(SpecError) as exc:
        load_spec(path)
    lines = str(exc.value).splitlines()
    assert lines[0] == f"{path} is invalid:"
    assert any(line.startswith("  repos[0].priority: ") for line in lines)


def test_load_spec_empty_file_and_non_mapping(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text("# nothing set\n")
    assert load_spec(path) == BuildSpec()
    path.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="must be a mapping"):
        load_spec(path)


# -- resolve -----------------------------------------------------------------------------


def debian_spec(**fields: Any) -> BuildSpec:
    return parse_spec({"mirror_key": str(ARCHIVE_KEY), **fields})


def test_resolve_mirror_from_host_config() -> None:
    spec = resolve(debian_spec(), environ={}, apt_root=APT / "debian-oneline")
    assert spec.mirror == DEBIAN
    assert spec.suite == "bookworm"
    assert spec.mirror_key == ARCHIVE_KEY


def test_resolve_mirror_from_deb822_host_config() -> None:
    spec = resolve(debian_spec(), environ={}, apt_root=APT / "debian-deb822")
    assert (spec.mirror, spec.suite) == (DEBIAN, "bookworm")


def test_env_mirror_overrides_host() -> None:
    env = {"LIVESTRAP_MIRROR": "http://env-mirror.example.test/debian/"}
    spec = resolve(debian_spec(), environ=env, apt_root=APT / "debian-oneline")
    assert spec.mirror == "http://env-mirror.example.test/debian"


def test_spec_mirror_overrides_env_and_host() -> None:
    env = {"LIVESTRAP_MIRROR": "http://env-mirror.example.test/debian"}
    spec = debian_spec(mirror="http://spec-mirror.example.test/debian")
    resolved = resolve(spec, environ=env, apt_root=APT / "debian-oneline")
    assert resolved.mirror == "http://spec-mirror.example.test/debian"


def test_bad_env_mirror_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        SpecError, match=re.escape("LIVESTRAP_MIRROR: 'ftp://x.example.test/debian'")
    ):
        resolve(
            debian_spec(),
            environ={"LIVESTRAP_MIRROR": "ftp://x.example.test/debian"},
            apt_root=tmp_path,
        )


def test_unusable_host_mirror_is_not_blamed_on_env(tmp_path: Path) -> None:
    apt = tmp_path / "etc/apt"
    apt.mkdir(parents=True)
    (apt / "sources.list").write_text(
        "deb mirror+file:///etc/apt/mirrors/debian.list bookworm main\n"
    )
    with pytest.raises(SpecError) as exc:
        resolve(debian_spec(), environ={}, apt_root=tmp_path)
    assert "LIVESTRAP_MIRROR:" not in str(exc.value)


def test_debian_defaults(tmp_path: Path) -> None:
    spec = resolve(debian_spec(), environ={"LIVESTRAP_MIRROR": DEBIAN}, apt_root=tmp_path)
    assert spec.mirror == DEBIAN
    assert spec.suite == "bookworm"
    assert spec.components == ["main"]
    assert spec.kernel == "linux-image-amd64"
    assert spec.mirror_key == ARCHIVE_KEY


def test_host_components_are_not_used_for_the_image() -> None:
    # the host's line lists main contrib non-free-firmware; the image gets the defaults
    spec = resolve(debian_spec(), environ={}, apt_root=APT / "debian-oneline")
    assert spec.components == ["main"]


def test_spec_values_win_over_defaults(tmp_path: Path) -> None:
    spec = debian_spec(
        suite="trixie", components=["main", "contrib"], kernel="linux-image-rt-amd64"
    )
    resolved = resolve(spec, environ={}, apt_root=APT / "debian-oneline")
    assert resolved.suite == "trixie"
    assert resolved.components == ["main", "contrib"]
    assert resolved.kernel == "linux-image-rt-amd64"


def test_resolve_does_not_change_its_input(tmp_path: Path) -> None:
    spec = debian_spec()
    resolve(spec, environ={"LIVESTRAP_MIRROR": DEBIAN}, apt_root=tmp_path)
    assert spec.mirror is None and spec.suite is None and spec.kernel is None


def test_key_from_host_signed_by(tmp_path: Path) -> None:
    key = tmp_path / "host-archive.gpg"
    key.write_bytes(b"\x99\x00\x01x")
    apt = tmp_path / "etc/apt"
    apt.mkdir(parents=True)
    (apt / "sources.list").write_text(f"deb [signed-by={key}] {DEBIAN} trixie main\n")
    spec = resolve(BuildSpec(), environ={}, apt_root=tmp_path)
    assert spec.mirror_key == key
    assert spec.suite == "trixie"


def test_ubuntu_defaults_from_host() -> None:
    spec = parse_spec({"distro": "ubuntu", "mirror_key": str(ARCHIVE_KEY)})
    resolved = resolve(spec, environ={}, apt_root=APT / "ubuntu-noble")
    assert resolved.mirror == UBUNTU  # trailing '/' of the host entry stripped
    assert resolved.suite == "noble"
    assert resolved.components == ["main", "universe"]
    assert resolved.kernel == "linux-image-generic"


def test_ubuntu_defaults_without_host_entry(tmp_path: Path) -> None:
    spec = parse_spec({"distro": "ubuntu", "mirror_key": str(ARCHIVE_KEY)})
    resolved = resolve(spec, environ={"LIVESTRAP_MIRROR": UBUNTU}, apt_root=tmp_path)
    assert (resolved.suite, resolved.components, resolved.kernel) == (
        "noble",
        ["main", "universe"],
        "linux-image-generic",
    )


def test_ubuntu_without_any_mirror() -> None:
    spec = parse_spec({"distro": "ubuntu", "mirror_key": str(ARCHIVE_KEY)})
    # the host only has Debian sources: nothing to take for Ubuntu
    with pytest.raises(SpecError) as exc:
        resolve(spec, environ={}, apt_root=APT / "debian-oneline")
    msg = str(exc.value)
    assert "no mirror for distro ubuntu" in msg
    assert "`mirror`" in msg
    assert "LIVESTRAP_MIRROR" in msg


@pytest.mark.skipif(UBUNTU_KEYRING.is_file(), reason=f"{UBUNTU_KEYRING} exists on this machine")
def test_ubuntu_with_mirror_but_no_key(tmp_path: Path) -> None:
    spec = parse_spec({"distro": "ubuntu", "mirror": UBUNTU})
    with pytest.raises(SpecError) as exc:
        resolve(spec, environ={}, apt_root=tmp_path)
    msg = str(exc.value)
    assert "no archive key for distro ubuntu" in msg
    assert "`mirror_key`" in msg
    assert str(UBUNTU_KEYRING) in msg


# -- sha256, all_packages, yaml ---------------------------------------------------------------


def test_sha256_stable_across_key_order() -> None:
    a = {"label": "x", "packages": ["curl", "jq"], "repos": [repo(priority=600)]}
    b = {"repos": [dict(reversed(list(repo(priority=600).items())))], "packages": ["curl", "jq"]}
    b["label"] = "x"
    assert list(a) != list(b)
    first, second = parse_spec(a), parse_spec(b)
    assert first.sha256() == second.sha256()
    assert len(first.sha256()) == 64
    assert parse_spec({**a, "packages": ["jq", "curl"]}).sha256() != first.sha256()


def test_sha256_stable_across_yaml_formatting(tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.yaml"
    one.write_text("label: x\npackages: [curl, jq]\ncompression: xz\n")
    two.write_text("# comment\ncompression: 'xz'\npackages:\n  - curl\n  - jq\nlabel: \"x\"\n")
    assert load_spec(one).sha256() == load_spec(two).sha256()


def test_all_packages(tmp_path: Path) -> None:
    spec = debian_spec(packages=["jq", "python3", "curl"])
    resolved = resolve(spec, environ={"LIVESTRAP_MIRROR": DEBIAN}, apt_root=tmp_path)
    assert resolved.all_packages() == [*BASE_PACKAGES, "linux-image-amd64", "jq", "curl"]


def test_all_packages_needs_a_resolved_spec() -> None:
    """Only a ResolvedSpec has a kernel for certain, so only it lists the packages."""
    assert not hasattr(BuildSpec(), "all_packages")
    assert hasattr(ResolvedSpec, "all_packages")


def test_spec_to_yaml_round_trips(tmp_path: Path) -> None:
    spec = resolve(
        debian_spec(repos=[repo()]), environ={"LIVESTRAP_MIRROR": DEBIAN}, apt_root=tmp_path
    )
    path = tmp_path / "effective.yaml"
    path.write_text(spec_to_yaml(spec))
    assert load_spec(path).model_dump() == spec.model_dump()
