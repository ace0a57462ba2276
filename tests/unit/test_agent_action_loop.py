"""Reporter + actions on a fake master: results sent, retried, dropped; follow-ups in order."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from test_agent_report import Collector, FixedRng

from livestrap.agent.actions import Executor
from livestrap.agent.aptinstall import InstallResult, Package
from livestrap.agent.config import AgentConfig
from livestrap.agent.report import FOLLOW_UP_S, FOLLOW_UP_TRIES, Reporter
from livestrap.agent.runner import Runner, RunResult
from livestrap.agent.transport import Request, Response, TransportError

pytestmark = pytest.mark.unit

CONFIG = AgentConfig(url="http://master.test:8080", token="tok")
A1 = "11111111-2222-4333-8444-000000000001"
A2 = "11111111-2222-4333-8444-000000000002"
DISCOVERY = "http://master.test:8080/api/v1/discovery"


def result_url(action_id: str) -> str:
    return f"{DISCOVERY}/actions/{action_id}/result"


def answer(*actions: dict[str, Any], facts_required: bool = False) -> Response:
    body = {"node_id": "n1", "heartbeat_s": 30, "facts_required": facts_required,
            "actions": list(actions)}  # fmt: skip
    return Response(200, json.dumps(body).encode())


def act(kind: str, action_id: str = A1, **args: Any) -> dict[str, Any]:
    return {"id": action_id, "kind": kind, "args": args}


class Master:
    """Scripted answers per kind of request: reports, and results (by URL)."""

    def __init__(self, reports: list[Response], results: list[Response | Exception] | None = None):
        self.reports = reports
        self.results = results or [Response(200, b'{"state": "succeeded"}')]
        self.log: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: Request) -> Response:
        body = json.loads(request.body)
        self.log.append((request.url, body))
        assert request.headers["Authorization"] == "Bearer tok"
        script: list[Any] = self.reports if request.url == DISCOVERY else self.results
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, Exception):
            raise item
        assert isinstance(item, Response)
        return item

    def urls(self) -> list[str]:
        return [url for url, _ in self.log]


class Node:
    """The fakes behind the Executor: install results, the package version, the runner."""

    def __init__(self, install: InstallResult | None = None, upgrade_to: str | None = None):
        self.install_result = install or InstallResult(True, 0, "Setting up foo\n", None)
        self.upgrade_to = upgrade_to
        self.version = "0.1.0+srcold"
        self.events: list[str] = []

    def install(self, packages: Sequence[Package], url: str, runner: Runner) -> InstallResult:
        self.events.append("install " + " ".join(p.apt_arg() for p in packages))
        self.version = self.upgrade_to or self.version
        return self.install_result

    def runner(
        self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None
    ) -> RunResult:
        self.events.append(" ".join(argv))
        return RunResult(0, "")


def agent(master: Master, node: Node, sleeps: list[float] | None = None) -> Reporter:
    executor = Executor(
        "http://master.test:8080",
        node.runner,
        clock=lambda: 5.0,
        install=node.install,
        version_now=lambda: node.version,
        running_version="0.1.0+srcold",
    )
    sleep = sleeps.append if sleeps is not None else (lambda s: None)
    return Reporter(CONFIG, Collector(), master, clock=lambda: 100.0, sleep=sleep,
                    rng=FixedRng(0.5), executor=executor)  # fmt: skip


def test_install_result_is_sent_and_the_next_report_comes_soon() -> None:
    master = Master([answer(act("install", packages=[{"name": "foo", "version": "2"}])), answer()])
    node = Node()
    reporter = agent(master, node)
    assert reporter.step() == FOLLOW_UP_S
    assert node.events == ["install foo=2"]
    assert master.urls() == [DISCOVERY, result_url(A1)]
    assert master.log[1][1] == {
        "node_id": "n1",
        "status": "succeeded",
        "exit_code": 0,
        "output_tail": "Setting up foo\n",
        "took_s": 0.0,
        "error": None,
    }
    assert reporter.step() == pytest.approx(30)  # nothing more to do: the usual heartbeat


def test_a_failed_install_is_reported_with_its_reason() -> None:
    failed = InstallResult(False, 100, "E: Unable to locate package nosuch\n",
                           "package nosuch is not in the master's repository")  # fmt: skip
    master = Master([answer(act("install", packages=[{"name": "nosuch"}]))])
    agent(master, Node(failed)).step()
    body = master.log[1][1]
    assert body["status"] == "failed" and body["exit_code"] == 100
    assert body["error"] == "package nosuch is not in the master's repository"


def test_result_retried_after_503_then_kept_in_order(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "livestrap.agent")
    master = Master(
        [answer(act("reinspect")), answer(), answer()],
        [Response(503, b"busy"), TransportError("refused"), Response(200, b"{}")],
    )
    reporter = agent(master, Node())
    delay = reporter.step()
    assert delay < FOLLOW_UP_S  # min(follow-up, backoff 0.5 * 2**0)
    assert master.urls()[-1] == result_url(A1)
    reporter.step()  # result again first (no answer), then a report
    reporter.step()  # result accepted
    results = [url for url in master.urls() if url != DISCOVERY]
    assert results == [result_url(A1)] * 3
    assert "result of action" in caplog.text and "accepted" in caplog.text
    reporter.step()
    assert master.urls()[-1] == DISCOVERY  # nothing pending any more


@pytest.mark.parametrize("status", [404, 409, 422])
def test_result_dropped_on_4xx(status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "livestrap.agent")
    master = Master([answer(act("reinspect")), answer()], [Response(status, b'{"detail": "x"}')])
    reporter = agent(master, Node())
    reporter.step()
    reporter.step()
    assert [u for u in master.urls() if u != DISCOVERY] == [result_url(A1)]
    assert f"HTTP {status}" in caplog.text and "dropped" in caplog.text


def test_reinspect_forces_a_report_with_facts_before_the_result() -> None:
    master = Master([answer(), answer(), answer(act("reinspect")), answer()])
    collector = Collector()
    reporter = agent(master, Node())
    reporter._collect = collector
    reporter.step()
    reporter.step()
    assert master.log[-1][1]["facts"] is None  # a plain heartbeat
    calls = collector.calls
    reporter.step()
    assert collector.calls == calls + 1  # collected again now
    forced, result = master.log[-2], master.log[-1]
    assert forced[0] == DISCOVERY and forced[1]["facts"] == {"cpu": {"threads": 4}}
    assert result == (result_url(A1), {**result[1], "status": "succeeded"})


def test_self_upgrade_sends_the_result_then_stops() -> None:
    master = Master([answer(act("install", packages=[{"name": "livestrap-agent"}])), answer()])
    node = Node(upgrade_to="0.2.0+test1")
    reporter = agent(master, node)
    reporter.run(max_steps=5)
    assert reporter.stopped
    assert master.urls() == [DISCOVERY, result_url(A1)]  # no report after: the agent exits
    assert master.log[1][1]["status"] == "succeeded"


def test_reboot_after_the_result_even_when_it_took_retries() -> None:
    master = Master([answer(act("reboot")), answer()],
                    [Response(503), Response(503), Response(200, b"{}")])  # fmt: skip
    node = Node()
    sleeps: list[float] = []
    reporter = agent(master, node, sleeps)
    node.events.append("start")
    reporter.step()
    assert master.urls() == [DISCOVERY, *[result_url(A1)] * 3]
    assert node.events == ["start", "systemctl reboot"]
    assert len(sleeps) == 2 and not reporter.stopped


def test_poweroff_goes_ahead_when_the_master_never_takes_the_result() -> None:
    master = Master([answer(act("poweroff"))], [TransportError("down")])
    node = Node()
    agent(master, node).step()
    assert node.events == ["systemctl poweroff"]
    # FOLLOW_UP_TRIES before the poweroff, then one more: it is kept until the end
    assert len([u for u in master.urls() if u != DISCOVERY]) == FOLLOW_UP_TRIES + 1


def test_actions_run_in_order_and_never_twice() -> None:
    first = answer(
        act("install", A1, packages=[{"name": "a"}]), act("install", A2, packages=[{"name": "b"}])
    )
    again = answer(act("install", A1, packages=[{"name": "a"}]))
    master = Master([first, again, answer()])
    node = Node()
    reporter = agent(master, node)
    reporter.step()
    reporter.step()
    assert node.events == ["install a", "install b"]
    assert [u for u in master.urls() if u != DISCOVERY] == [result_url(A1), result_url(A2)]


def test_hostile_orders_are_reported_failed_and_never_run() -> None:
    bad = [act("shell", A1, cmd="id"), act("install", A2, packages=[{"name": "-o"}])]
    master = Master([answer(*bad), answer()])
    node = Node()
    agent(master, node).step()
    assert node.events == []
    errors = [body["error"] for url, body in master.log if url != DISCOVERY]
    assert errors == ["unknown action kind 'shell'",
                      "install: packages[0].name '-o' is not a package name"]  # fmt: skip


def test_heartbeats_go_on_while_an_install_runs() -> None:
    """An install can take minutes: without heartbeats the master would show the node
    offline (and announce it). Orders in those answers are not taken."""
    import threading

    beats = threading.Event()
    slow = Node()
    first = {"node_id": "n1", "heartbeat_s": 1, "facts_required": False,
             "actions": [act("install", packages=[{"name": "foo"}])]}  # fmt: skip
    master = Master([Response(200, json.dumps(first).encode())])
    reporter = agent(master, slow)

    def install(packages: Sequence[Package], url: str, runner: Runner) -> InstallResult:
        assert beats.wait(5)  # the install "runs" until a heartbeat went out
        return InstallResult(True, 0, "done\n", None)

    def count(request: Request) -> Response:
        answered = master(request)
        if request.url == DISCOVERY and len(master.log) >= 2:
            beats.set()
        return answered

    reporter._transport = count
    reporter._executor.install = install
    reporter.step()
    plain = [body for url, body in master.log[1:] if url == DISCOVERY]
    assert len(plain) >= 1 and all(body["facts"] is None for body in plain)
    assert all(body["node_id"] == "n1" for body in plain)
    assert master.urls()[-1] == result_url(A1)  # the result after the install
    assert slow.events == []  # the order in the heartbeats' answers was never run again
