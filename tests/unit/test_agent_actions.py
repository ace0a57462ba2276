"""agent.actions: hostile orders checked on the node, and each kind's outcome."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from livestrap.agent.actions import MAX_ORDERS, Executor, Order, Outcome, parse_orders
from livestrap.agent.aptinstall import InstallResult, Package
from livestrap.agent.runner import Runner, RunResult

pytestmark = pytest.mark.unit

ID = "0b6e8f6c-3a55-4c1e-9d7a-0f2a5b1c9e01"


def order(kind: Any = "install", args: Any = None, oid: str = ID, **extra: Any) -> dict[str, Any]:
    if args is None:
        args = {"packages": [{"name": "foo", "version": None}]}
    return {"id": oid, "kind": kind, "args": args, **extra}


def ids(n: int) -> list[str]:
    return [f"0b6e8f6c-3a55-4c1e-9d7a-{i:012x}" for i in range(n)]


def problem(raw: dict[str, Any]) -> str | None:
    (parsed,) = parse_orders([raw])
    return parsed.problem


def test_valid_orders() -> None:
    raw = [
        order(
            args={"packages": [{"name": "livestrap-agent"}, {"name": "g++", "version": "1:2.0~b"}]}
        ),
        order("reinspect", {}, ids(1)[0], created_at="ignored"),
        order("reboot", {}),
        order("poweroff", {}),
    ]
    first, second, third, fourth = parse_orders(raw)
    assert first == Order(ID, "install", (Package("livestrap-agent"), Package("g++", "1:2.0~b")))
    assert second == Order(ids(1)[0], "reinspect")
    assert (third.kind, fourth.kind, third.problem, fourth.problem) == (
        "reboot",
        "poweroff",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (order("shell", {"cmd": "id"}), "unknown action kind 'shell'"),
        (order(["install"], {}), "unknown action kind ['install']"),
        (order("reboot", {"now": True}), "reboot takes no arguments, got 'now'"),
        (order("reinspect", []), "reinspect: args is not an object"),
        (
            order(args={"packages": [{"name": "foo"}], "force": True}),
            "install takes only 'packages'",
        ),
        (order(args={"packages": []}), "packages must be a list of 1 to 64"),
        (order(args={"packages": [{"name": f"p{i}"} for i in range(65)]}), "1 to 64"),
        (order(args={"packages": ["foo"]}), "packages[0] is not an object with a name"),
        (order(args={"packages": [{"name": "foo", "arch": "x"}]}), "unknown key 'arch'"),
        (order(args={"packages": [{"name": "-o"}]}), "packages[0].name '-o' is not a package name"),
        (order(args={"packages": [{"name": "foo;rm"}]}), "'foo;rm' is not a package name"),
        (order(args={"packages": [{"name": ".."}]}), "'..' is not a package name"),
        (order(args={"packages": [{"name": "foo\n"}]}), "is not a package name"),
        (order(args={"packages": [{"name": "Foo"}]}), "is not a package name"),
        (order(args={"packages": [{"name": "foo-"}]}), "'foo-' ends in '-' (apt-get removes it)"),
        (order(args={"packages": [{"name": "a-"}]}), "ends in '-'"),
        (order(args={"packages": [{"name": "foo", "version": "1 2"}]}), "'1 2' is not a version"),
        (order(args={"packages": [{"name": "foo", "version": ""}]}), "'' is not a version"),
        (order(args={"packages": [{"name": "foo", "version": 2}]}), "2 is not a version"),
    ],
)
def test_invalid_orders_are_kept_to_be_reported_failed(raw: dict[str, Any], reason: str) -> None:
    found = problem(raw)
    assert found is not None and reason in found


def test_a_long_hostile_value_is_cut_in_the_reason() -> None:
    found = problem(order("x" * 5000, {}))
    assert found is not None and len(found) < 100


def test_orders_without_a_usable_id_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "livestrap.agent")
    raw = [order(oid="../../nodes"), order(oid=ID.upper()), "install", {"kind": "reboot"}, order()]
    assert [o.id for o in parse_orders(raw)] == [ID]
    assert caplog.text.count("has no valid id") == 4


def test_nine_orders_run_eight_and_refuse_the_ninth() -> None:
    orders = parse_orders([order("reinspect", {}, oid) for oid in ids(9)])
    assert len(orders) == 9 and MAX_ORDERS == 8
    assert all(o.problem is None for o in orders[:8])
    assert orders[8].problem == "more than 8 actions in one answer; not run"


@pytest.mark.parametrize("raw", [None, {}, "actions", 3])
def test_not_a_list_is_no_orders(raw: Any) -> None:
    assert parse_orders(raw) == []


def test_a_huge_list_is_read_only_in_part() -> None:
    assert len(parse_orders([order(oid=i) for i in ids(1000)])) == 64


# --- the executor ------------------------------------------------------------------


class FakeInstall:
    def __init__(self, result: InstallResult, upgrade_to: str | None = None) -> None:
        self.result = result
        self.calls: list[tuple[list[Package], str]] = []
        self.version = "0.1.0+srcold"
        self.upgrade_to = upgrade_to

    def __call__(self, packages: Sequence[Package], url: str, runner: Runner) -> InstallResult:
        self.calls.append((list(packages), url))
        if self.upgrade_to:
            self.version = self.upgrade_to
        return self.result


def fake_runner(exit_code: int = 0) -> tuple[Runner, list[list[str]]]:
    calls: list[list[str]] = []

    def run(argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None) -> RunResult:
        calls.append(list(argv))
        return RunResult(exit_code, "")

    return run, calls


def executor(fake: FakeInstall, runner: Runner | None = None) -> Executor:
    times = iter([10.0, 12.5, 20.0, 21.0])
    return Executor(
        "http://m:8080",
        runner or fake_runner()[0],
        clock=lambda: next(times),
        install=fake,
        version_now=lambda: fake.version,
        running_version="0.1.0+srcold",
    )


def no_reinspect() -> str | None:
    raise AssertionError("not a reinspect")


def test_install_success_and_failure() -> None:
    ok = FakeInstall(InstallResult(True, 0, "Setting up foo\n", None))
    (valid,) = parse_orders([order()])
    assert executor(ok).run(valid, no_reinspect) == Outcome("succeeded", 0, "Setting up foo\n", 2.5)
    assert ok.calls == [([Package("foo")], "http://m:8080")]
    bad = FakeInstall(
        InstallResult(False, 100, "E: ...", "package foo is not in the master's repository")
    )
    outcome = executor(bad).run(valid, no_reinspect)
    assert outcome.status == "failed" and outcome.exit_code == 100 and outcome.then is None
    assert outcome.body("n1") == {
        "node_id": "n1",
        "status": "failed",
        "exit_code": 100,
        "output_tail": "E: ...",
        "took_s": 2.5,
        "error": "package foo is not in the master's repository",
    }


def test_an_upgraded_agent_exits_after_its_result() -> None:
    fake = FakeInstall(InstallResult(True, 0, "Unpacking livestrap-agent\n", None), "0.2.0")
    ex = executor(fake)
    (valid,) = parse_orders([order(args={"packages": [{"name": "livestrap-agent"}]})])
    outcome = ex.run(valid, no_reinspect)
    assert outcome.status == "succeeded" and outcome.then == "exit"
    assert "livestrap-agent 0.1.0+srcold -> 0.2.0: restarting" in outcome.output_tail
    assert ex.follow_up("exit") is True


def test_an_invalid_order_never_runs() -> None:
    fake = FakeInstall(InstallResult(True, 0, "", None))
    (bad,) = parse_orders([order(args={"packages": [{"name": "foo;rm"}]})])
    outcome = executor(fake).run(bad, no_reinspect)
    assert outcome.status == "failed" and fake.calls == []
    assert outcome.error is not None and "'foo;rm' is not a package name" in outcome.error


def test_reinspect_outcomes() -> None:
    fake = FakeInstall(InstallResult(True, 0, "", None))
    (valid,) = parse_orders([order("reinspect", {})])
    assert executor(fake).run(valid, lambda: None).status == "succeeded"
    failed = executor(fake).run(valid, lambda: "the report was not accepted")
    assert (failed.status, failed.error) == ("failed", "the report was not accepted")


def test_reboot_and_poweroff_run_systemctl_only_in_follow_up() -> None:
    runner, calls = fake_runner()
    ex = executor(FakeInstall(InstallResult(True, 0, "", None)), runner)
    (reboot,) = parse_orders([order("reboot", {})])
    outcome = ex.run(reboot, no_reinspect)
    assert (outcome.status, outcome.then, calls) == ("succeeded", "reboot", [])
    assert ex.follow_up("reboot") is False
    assert ex.follow_up("poweroff") is False
    assert calls == [["systemctl", "reboot"], ["systemctl", "poweroff"]]


def test_a_crashing_action_is_its_failure() -> None:
    def crash(packages: Sequence[Package], url: str, runner: Runner) -> InstallResult:
        raise OSError("disk full")

    ex = Executor("http://m", fake_runner()[0], clock=lambda: 0.0, install=crash)
    (valid,) = parse_orders([order()])
    outcome = ex.run(valid, no_reinspect)
    assert outcome.status == "failed" and outcome.error == "the agent failed: OSError: disk full"
