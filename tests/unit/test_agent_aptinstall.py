"""agent.aptinstall: the one source it renders, apt's private tree, and failures explained."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from livestrap.agent import aptinstall
from livestrap.agent.aptinstall import (
    AptPaths,
    InstallError,
    MasterRepoInfo,
    Package,
    install,
    load_repo_info,
    parse_repo_info,
    render_sources,
    repo_uri,
)
from livestrap.agent.runner import RunResult, subprocess_runner

pytestmark = pytest.mark.unit

INFO = MasterRepoInfo("livestrap", ("main",))


class FakeRunner:
    """Records commands; answers each with the next scripted RunResult."""

    def __init__(self, *results: RunResult) -> None:
        self.results = list(results)
        self.calls: list[tuple[list[str], float, Mapping[str, str] | None]] = []

    def __call__(
        self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None
    ) -> RunResult:
        self.calls.append((list(argv), timeout_s, env))
        return self.results.pop(0)


@pytest.fixture(autouse=True)
def _no_host_dpkg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's own dpkg state is never looked at."""
    monkeypatch.setattr(aptinstall, "DPKG_UPDATES", tmp_path / "no-dpkg-updates")


AMD64 = "m_repo_dists_livestrap_main_binary-amd64"


def index(paths: AptPaths, text: str, name: str = AMD64) -> None:
    """A Packages index in the private lists dir, as apt-get update leaves it."""
    paths.lists.mkdir(parents=True, exist_ok=True)
    (paths.lists / f"{name}_Packages").write_text(text)


FOO_BAR = "Package: foo\nVersion: 2\nArchitecture: amd64\n\nPackage: bar\nVersion: 1:2.0~rc1\n"


def test_render_sources_exact() -> None:
    text = render_sources("http://192.0.2.10:8080/repo", INFO)
    assert text == (
        "# livestrap: the master's repository (written by the agent; the only source)\n"
        "Types: deb\n"
        "URIs: http://192.0.2.10:8080/repo\n"
        "Suites: livestrap\n"
        "Components: main\n"
        "Signed-By: /usr/share/livestrap/master-repo.asc\n"
    )


@pytest.mark.parametrize(
    ("url", "uri"),
    [("http://m:8080", "http://m:8080/repo"), ("https://m/base/", "https://m/base/repo")],
)
def test_repo_uri(url: str, uri: str) -> None:
    assert repo_uri(url) == uri


@pytest.mark.parametrize("url", ["ftp://m", "http://m\nURIs: http://evil", "http://m x", ""])
def test_repo_uri_refuses_anything_but_a_plain_url(url: str) -> None:
    with pytest.raises(InstallError, match="not a plain http"):
        repo_uri(url)


def test_parse_repo_info_refuses_injection() -> None:
    assert parse_repo_info('{"suite": "livestrap", "components": ["main"]}') == INFO
    for bad in (
        '{"suite": "a\\nURIs: x", "components": ["main"]}',
        '{"suite": "livestrap", "components": []}',
        '{"suite": "livestrap", "components": ["main contrib"]}',
        "[]",
    ):
        with pytest.raises(ValueError):
            parse_repo_info(bad)


def test_load_repo_info_says_what_the_image_lacks(tmp_path: Path) -> None:
    config, key = tmp_path / "master-repo.json", tmp_path / "master-repo.asc"
    with pytest.raises(InstallError, match="carries no master repository"):
        load_repo_info(config, key)
    config.write_text('{"suite": "livestrap", "components": ["main"]}')
    key.write_text("key")
    assert load_repo_info(config, key) == MasterRepoInfo("livestrap", ("main",), key)
    config.write_text("{")
    with pytest.raises(InstallError, match="unusable"):
        load_repo_info(config, key)


def test_install_reads_only_the_private_tree(tmp_path: Path) -> None:
    paths = AptPaths(tmp_path / "apt")
    (paths.source_parts).mkdir(parents=True)
    (paths.source_parts / "left-over.sources").write_text("Types: deb\n")
    index(paths, FOO_BAR)
    runner = FakeRunner(RunResult(0, "Hit:1 ...\n"), RunResult(0, "Setting up foo (2) ...\n"))
    packages = [Package("foo"), Package("bar", "1:2.0~rc1")]
    result = install(packages, "http://m:8080/", runner, paths=paths, info=INFO)
    assert result.ok and result.exit_code == 0 and result.error is None
    assert "Setting up foo" in result.output_tail
    (update, t1, env), (inst, t2, _) = runner.calls
    private = [
        "-o", f"Dir::Etc::SourceList={paths.root}/sources.list",
        "-o", f"Dir::Etc::SourceParts={paths.root}/sources.list.d/",
        "-o", f"Dir::State::Lists={paths.root}/lists/",
        "-o", f"Dir::Cache={paths.root}/archive-cache/",
    ]  # fmt: skip
    assert update == ["apt-get", "-q", *private, "-o", "APT::Update::Error-Mode=any",
                      "-o", "Acquire::GzipIndexes=false", "update"]  # fmt: skip
    assert inst[:2] == ["apt-get", "-q"] and inst[3:11] == private
    assert inst[-3:] == ["install", "foo", "bar=1:2.0~rc1"]
    assert "--no-install-recommends" in inst
    assert (t1, t2) == (aptinstall.UPDATE_TIMEOUT_S, aptinstall.INSTALL_TIMEOUT_S)
    assert env is not None and env["DEBIAN_FRONTEND"] == "noninteractive" and env["LC_ALL"] == "C"
    assert (env["NEEDRESTART_SUSPEND"], env["NEEDRESTART_MODE"]) == ("1", "l")
    assert paths.source_list.read_text() == ""
    assert sorted(p.name for p in paths.source_parts.iterdir()) == ["livestrap-master.sources"]
    assert "URIs: http://m:8080/repo\n" in paths.sources_file.read_text()
    assert (paths.lists / "partial").is_dir() and (paths.cache / "archives/partial").is_dir()


def test_a_package_not_in_the_repo_is_named(tmp_path: Path) -> None:
    noise = "x" * 10000
    paths = AptPaths(tmp_path)
    index(paths, FOO_BAR)
    runner = FakeRunner(
        RunResult(0, "ok\n"),
        RunResult(100, f"{noise}\nReading package lists...\nE: Unable to locate package foo\n"),
    )
    result = install([Package("foo")], "http://m", runner, paths=paths, info=INFO)
    assert not result.ok and result.exit_code == 100
    assert result.error == "package foo is not in the master's repository"
    assert len(result.output_tail) == aptinstall.TAIL_CHARS
    assert result.output_tail.endswith("E: Unable to locate package foo\n")


def test_a_missing_version_is_named(tmp_path: Path) -> None:
    out = "E: Version '2' for 'foo' was not found\n"
    paths = AptPaths(tmp_path)
    index(paths, FOO_BAR)
    runner = FakeRunner(RunResult(0, ""), RunResult(100, out))
    result = install([Package("foo", "2")], "http://m", runner, paths=paths, info=INFO)
    assert result.error == "version 2 of foo is not in the master's repository"


@pytest.mark.parametrize(
    ("package", "error"),
    [
        (Package("nosuch"), "package nosuch is not in the master's repository"),
        (Package("fo."), "package fo. is not in the master's repository"),  # a regex to apt
        (Package("fo+"), "package fo+ is not in the master's repository"),
        (Package("foo", "9.9"), "version 9.9 of foo is not in the master's repository"),
        (Package("bar", "2.0~rc1"), "version 2.0~rc1 of bar is not in the master's repository"),
        (Package("amd64"), "package amd64 is not in the master's repository"),  # not a name
    ],
)
def test_only_exact_names_in_the_index_are_installed(
    tmp_path: Path, package: Package, error: str
) -> None:
    paths = AptPaths(tmp_path)
    index(paths, FOO_BAR)
    index(paths, "Package: baz\nVersion: 1\n", "m_repo_dists_livestrap_main_binary-all")
    runner = FakeRunner(RunResult(0, "Hit:1\n"))
    result = install([Package("baz"), package], "http://m", runner, paths=paths, info=INFO)
    assert len(runner.calls) == 1 and runner.calls[0][0][-1] == "update"  # never installed
    assert not result.ok and result.exit_code is None and result.error == error
    assert "Hit:1" in result.output_tail


def test_every_index_is_read_and_nothing_else(tmp_path: Path) -> None:
    paths = AptPaths(tmp_path)
    index(paths, "Package: foo\nVersion: 1\n\nPackage: foo\nVersion: 2\n")
    index(paths, "Package: foo\nVersion: 3\n", "other_binary-arm64")
    (paths.lists / "m_InRelease").write_text("Package: bar\nVersion: 1\n")
    found = aptinstall.listed_versions(paths.lists, {"foo", "bar", "baz"})
    assert found == {"foo": {"1", "2", "3"}}


def test_no_index_refuses_every_name(tmp_path: Path) -> None:
    runner = FakeRunner(RunResult(0, ""))
    result = install([Package("foo")], "http://m", runner, paths=AptPaths(tmp_path), info=INFO)
    assert result.error == "package foo is not in the master's repository"


def test_update_failure_stops_before_install(tmp_path: Path) -> None:
    out = "E: The repository 'http://m/repo livestrap InRelease' is not signed.\n"
    runner = FakeRunner(RunResult(100, out))
    result = install([Package("foo")], "http://m", runner, paths=AptPaths(tmp_path), info=INFO)
    assert len(runner.calls) == 1
    assert result.error == (
        "apt-get update from the master's repository failed (exit 100): "
        "The repository 'http://m/repo livestrap InRelease' is not signed."
    )


def test_timeout_is_reported(tmp_path: Path) -> None:
    paths = AptPaths(tmp_path)
    index(paths, FOO_BAR)
    runner = FakeRunner(RunResult(0, ""), RunResult(None, "Unpacking\n", timed_out=True))
    result = install([Package("foo")], "http://m", runner, paths=paths, info=INFO)
    assert result.exit_code is None and result.error == "apt-get install timed out after 600 s"


def test_no_repository_in_the_image_runs_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = FakeRunner()

    def no_repo() -> MasterRepoInfo:
        return load_repo_info(tmp_path / "none.json", tmp_path / "none.asc")

    monkeypatch.setattr(aptinstall, "load_repo_info", no_repo)
    result = install([Package("foo")], "http://m", runner, paths=AptPaths(tmp_path))
    assert not result.ok and runner.calls == []
    assert result.error is not None and "carries no master repository" in result.error


def interrupted_dpkg(tmp_path: Path) -> Path:
    updates = tmp_path / "dpkg-updates"
    updates.mkdir(parents=True)
    (updates / "0001").write_text("")
    return updates


def test_an_interrupted_dpkg_is_repaired_before_the_install(tmp_path: Path) -> None:
    paths = AptPaths(tmp_path / "apt")
    index(paths, FOO_BAR)
    runner = FakeRunner(RunResult(0, "Hit\n"), RunResult(0, "Setting up bar\n"), RunResult(0, ""))
    result = install([Package("foo")], "http://m", runner, paths=paths, info=INFO,
                     dpkg_updates=interrupted_dpkg(tmp_path))  # fmt: skip
    assert result.ok
    (_, _, _), (repair, timeout, env), (inst, _, _) = runner.calls
    assert repair == ["dpkg", "--configure", "-a"] and timeout == aptinstall.REPAIR_TIMEOUT_S
    assert env == aptinstall.APT_ENV and inst[-2:] == ["install", "foo"]
    assert "$ dpkg --configure -a\nSetting up bar" in result.output_tail


def test_a_failed_repair_stops_before_the_install(tmp_path: Path) -> None:
    paths = AptPaths(tmp_path / "apt")
    index(paths, FOO_BAR)
    out = "dpkg: error: dpkg frontend lock was locked by another process with pid 7\n"
    runner = FakeRunner(RunResult(0, ""), RunResult(2, out))
    result = install([Package("foo")], "http://m", runner, paths=paths, info=INFO,
                     dpkg_updates=interrupted_dpkg(tmp_path))  # fmt: skip
    assert len(runner.calls) == 2 and not result.ok and result.exit_code == 2
    assert result.error == (
        "dpkg --configure -a (dpkg was left interrupted) failed (exit 2): "
        "dpkg: error: dpkg frontend lock was locked by another process with pid 7"
    )
    hung = FakeRunner(RunResult(0, ""), RunResult(None, "", timed_out=True))
    result = install([Package("foo")], "http://m", hung, paths=paths, info=INFO,
                     dpkg_updates=interrupted_dpkg(tmp_path / "x"))  # fmt: skip
    assert result.error == "dpkg --configure -a (dpkg was left interrupted) timed out after 120 s"


def test_an_empty_or_missing_updates_dir_needs_no_repair(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert not aptinstall.interrupted(tmp_path / "empty")
    assert not aptinstall.interrupted(tmp_path / "missing")
    assert aptinstall.interrupted(interrupted_dpkg(tmp_path))


def test_a_timed_out_command_gets_sigterm_then_sigkill() -> None:
    polite = subprocess_runner(["sh", "-c", "trap 'echo term; exit 7' TERM; echo up; "
                                "while :; do sleep 0.05; done"], 0.5, grace_s=5)  # fmt: skip
    assert polite.timed_out and polite.exit_code is None and polite.output.endswith("term\n")
    start = time.monotonic()
    stubborn = subprocess_runner(["sh", "-c", "trap '' TERM; echo up; while :; do sleep 0.05; "
                                  "done"], 0.3, grace_s=0.5)  # fmt: skip
    assert stubborn.timed_out and stubborn.output == "up\n"
    assert 0.7 < time.monotonic() - start < 5


def test_subprocess_runner_tail_exit_and_timeout() -> None:
    done = subprocess_runner(["sh", "-c", "echo out; echo err >&2; exit 3"], 10)
    assert done == RunResult(3, "out\nerr\n")
    slow = subprocess_runner(["sh", "-c", "echo started; sleep 30"], 0.3)
    assert slow.timed_out and slow.exit_code is None and slow.output == "started\n"
    missing = subprocess_runner(["/nonexistent/livestrap-tool"], 1)
    assert missing.exit_code is None and "cannot run" in missing.output
