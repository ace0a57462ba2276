"""Node actions over HTTP against real master processes: queue (one node, a selector),
4xx naming the field, delivered in one heartbeat answer and never again, results
(200/404/409), lost after the timeout, cancel, a restart that loses and repeats nothing,
and the `livestrap nodes` action commands."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

import livestrap.cli.actions_cmd  # noqa: F401 -- its commands, on the nodes group
from livestrap.agent.report import facts_hash
from livestrap.cli.nodes_cmd import app as cli_app
from livestrap.master.services.actions import NOT_HELD
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

_serial = itertools.count(1)
INSTALL = {"kind": "install", "args": {"packages": [{"name": "htop", "version": "3.2.2-2"}]}}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("actions") / "data", heartbeat_s=1) as m:
        yield m


@pytest.fixture(scope="module")
def admin(master: Master, request: pytest.FixtureRequest) -> httpx.Client:
    client = master.admin()
    request.addfinalizer(client.close)
    return client


class Agent:
    """A node's agent, as far as actions go: registers, heartbeats, posts results."""

    def __init__(self, master: Master) -> None:
        n = next(_serial)
        self.master = master
        self.mac = f"52:54:00:aa:{n >> 8:02x}:{n & 255:02x}"
        self.facts = {"system": {"vendor": "QEMU", "serial": f"A{n}", "uuid": str(uuid.uuid4())},
                      "nics": [{"name": "ens3", "mac": self.mac}]}  # fmt: skip
        self.node_id = ""
        self.node_id = self.report(facts=True)["node_id"]

    def report(self, facts: bool = False, **extra: Any) -> dict[str, Any]:
        body = {"agent_version": "0.1.0", "image_id": "img-1", "boot_mac": self.mac,
                "node_id": self.node_id or None, "facts_hash": facts_hash(self.facts),
                "facts": self.facts if facts else None, "failures": [], "uptime_s": 60,
                **extra}  # fmt: skip
        with self.master.discovery() as client:
            resp = client.post("/api/v1/discovery", json=body)
        assert resp.status_code in (200, 201), resp.text
        answer: dict[str, Any] = resp.json()
        return answer

    def orders(self, **extra: Any) -> list[dict[str, Any]]:
        orders: list[dict[str, Any]] = self.report(**extra)["actions"]
        return orders

    def result(self, action_id: str, node_id: str | None = None, **kw: Any) -> httpx.Response:
        body = {"node_id": node_id or self.node_id, "status": "succeeded", "exit_code": 0,
                "output_tail": "Setting up htop\n", "took_s": 3.2, "error": None, **kw}  # fmt: skip
        with self.master.discovery() as client:
            return client.post(f"/api/v1/discovery/actions/{action_id}/result", json=body)


def queue(admin: httpx.Client, node: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = admin.post(f"/api/v1/nodes/{node}/actions", json=body)
    assert resp.status_code == 201, resp.text
    action: dict[str, Any] = resp.json()
    return action


def state_of(admin: httpx.Client, action_id: str) -> str:
    resp = admin.get(f"/api/v1/actions/{action_id}")
    assert resp.status_code == 200, resp.text
    state: str = resp.json()["state"]
    return state


def test_delivered_once_then_the_result_goes_on_the_timeline(
    master: Master, admin: httpx.Client
) -> None:
    agent = Agent(master)
    action = queue(admin, agent.node_id[:8], INSTALL)  # a prefix of the id works
    assert (action["state"], action["node_id"], action["requested_by"]) == (
        "queued", agent.node_id, "api")  # fmt: skip
    orders = agent.orders()
    assert orders == [{"id": action["id"], "kind": "install", "args": {
        "packages": [{"name": "htop", "version": "3.2.2-2"}]}}]  # fmt: skip
    assert agent.orders() == []  # a second heartbeat does not deliver it again
    assert agent.report(facts=True)["actions"] == []  # nor does a report with facts
    assert state_of(admin, action["id"]) == "delivered"
    resp = agent.result(action["id"])
    assert (resp.status_code, resp.json()) == (200, {"state": "succeeded"})
    shown = admin.get(f"/api/v1/actions/{action['id']}").json()
    assert (shown["exit_code"], shown["took_s"], shown["output_tail"]) == (
        0, 3.2, "Setting up htop\n")  # fmt: skip
    timeline = admin.get(f"/api/v1/nodes/{agent.node_id}/timeline").json()
    kinds = [e["kind"] for e in timeline if e["kind"].startswith("action-")]
    assert kinds == ["action-delivered", "action-succeeded"]
    assert timeline[-1]["detail"]["action_id"] == action["id"]


def test_results_answer_404_and_409(master: Master, admin: httpx.Client) -> None:
    agent, other = Agent(master), Agent(master)
    action = queue(admin, agent.node_id, {"kind": "reinspect"})
    assert agent.result(action["id"]).status_code == 409  # queued, never handed out
    assert [o["id"] for o in agent.orders()] == [action["id"]]
    assert agent.result(action["id"], node_id=other.node_id).status_code == 404
    assert agent.result(str(uuid.uuid4())).status_code == 404
    bad = agent.result(action["id"], status="done")
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "status"]
    failed = agent.result(action["id"], status="failed", exit_code=100, error="E: no htop")
    assert (failed.status_code, failed.json()) == (200, {"state": "failed"})
    again = agent.result(action["id"])
    assert again.status_code == 409 and "failed" in again.json()["detail"]


def test_results_need_the_discovery_token_and_a_small_body(master: Master) -> None:
    agent = Agent(master)
    path = f"/api/v1/discovery/actions/{uuid.uuid4()}/result"
    with master.admin() as client:  # the admin token is no discovery token
        assert client.post(path, json={}).status_code == 401
    with master.discovery() as client:
        big = client.post(path, content=b'{"node_id": "' + b"x" * (70 << 10) + b'"}',
                          headers={"content-type": "application/json"})  # fmt: skip
    assert big.status_code == 413
    assert agent.result(str(uuid.uuid4()), output_tail="x" * 5000).status_code == 422


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"kind": "shell", "args": {"cmd": "id"}}, ["body"]),
        ({"kind": "install", "args": {"packages": [{"name": "htop; reboot"}]}},
         ["body", "install", "args", "packages", 0, "name"]),
        ({"kind": "install", "args": {"packages": [{"name": "htop", "source": "x"}]}},
         ["body", "install", "args", "packages", 0, "source"]),
        ({"kind": "reboot", "args": {"delay": 5}}, ["body", "reboot", "args", "delay"]),
        ({"kind": "reboot", "args": {}, "urgent": True}, ["body", "reboot", "urgent"]),
    ],
)  # fmt: skip
def test_bad_actions_are_422_naming_the_field(
    master: Master, admin: httpx.Client, body: dict[str, Any], loc: list[Any]
) -> None:
    agent = Agent(master)
    resp = admin.post(f"/api/v1/nodes/{agent.node_id}/actions", json=body)
    assert resp.status_code == 422, resp.text
    assert [d["loc"] for d in resp.json()["detail"]] == [loc]
    if loc == ["body"]:
        assert "kind" in resp.json()["detail"][0]["msg"]


def test_unknown_node_and_cancel(master: Master, admin: httpx.Client) -> None:
    resp = admin.post(f"/api/v1/nodes/{uuid.uuid4()}/actions", json={"kind": "reboot"})
    assert resp.status_code == 404
    agent = Agent(master)
    first = queue(admin, agent.node_id, {"kind": "reinspect"})
    second = queue(admin, agent.node_id, {"kind": "reboot"})
    cancelled = admin.delete(f"/api/v1/actions/{second['id']}")
    assert (cancelled.status_code, cancelled.json()["state"]) == (200, "cancelled")
    assert [o["id"] for o in agent.orders()] == [first["id"]]
    assert admin.delete(f"/api/v1/actions/{first['id']}").status_code == 409  # delivered
    assert admin.delete(f"/api/v1/actions/{uuid.uuid4()}").status_code == 404
    agent.result(first["id"])
    assert agent.orders() == []  # the cancelled one never goes out
    listed = admin.get(f"/api/v1/nodes/{agent.node_id}/actions").json()
    assert [(a["kind"], a["state"]) for a in listed] == [("reboot", "cancelled"),
                                                          ("reinspect", "succeeded")]  # fmt: skip


def test_bulk_over_a_selector(master: Master, admin: httpx.Client) -> None:
    agents = [Agent(master) for _ in range(3)]
    body = {"kind": "reinspect", "selector": {"macs": [a.mac.upper() for a in agents[:2]]}}
    resp = admin.post("/api/v1/actions", json=body)
    assert resp.status_code == 201, resp.text
    answer = resp.json()
    assert answer["count"] == 2
    assert sorted(a["node_id"] for a in answer["queued"]) == sorted(a.node_id for a in agents[:2])
    assert [len(a.orders()) for a in agents] == [1, 1, 0]
    for selector, status in (({}, 400), ({"macs": ["52:54:00:ff:ff:ff"]}, 404),
                             ({"ids": ["nobody"]}, 404), ({"everything": True}, 422)):  # fmt: skip
        resp = admin.post("/api/v1/actions", json={"kind": "reboot", "selector": selector})
        assert resp.status_code == status, resp.text
    one = admin.post("/api/v1/actions", json={"kind": "reboot", "selector": {
        "ids": [agents[2].node_id], "status": "online"}})  # fmt: skip
    assert one.json()["count"] == 1


def cli(master: Master, *argv: str) -> str:
    env = {"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token, "COLUMNS": "200"}
    result = CliRunner().invoke(cli_app, list(argv), env=env)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_cli_commands(master: Master) -> None:
    agent = Agent(master)
    queued = json.loads(cli(master, "install", agent.node_id[:10], "htop", "jq=1.6-2", "-o",
                            "json"))  # fmt: skip
    assert queued[0]["args"] == {"packages": [{"name": "htop", "version": None},
                                              {"name": "jq", "version": "1.6-2"}]}  # fmt: skip
    assert cli(master, "reboot", agent.node_id, "-o", "value").strip() != queued[0]["id"]
    table = cli(master, "actions", agent.node_id)
    assert "install" in table and "htop jq=1.6-2" in table and "reboot" in table
    listed = json.loads(cli(master, "actions", agent.node_id, "-o", "json"))
    assert [a["kind"] for a in listed] == ["reboot", "install"]
    bad = CliRunner().invoke(cli_app, ["install", agent.node_id, "Bad_Name"],
                             env={"LIVESTRAP_MASTER": master.url,
                                  "LIVESTRAP_TOKEN": master.admin_token})  # fmt: skip
    assert bad.exit_code != 0 and "name" in str(bad.exception)


def test_a_master_restart_loses_and_repeats_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with master_process(data, heartbeat_s=1) as first, first.admin() as admin:
        agent = Agent(first)
        a, b = (queue(admin, agent.node_id, {"kind": k})["id"] for k in ("reinspect", "reboot"))
        assert [o["id"] for o in agent.orders()] == [a]
    with master_process(data, heartbeat_s=1) as second, second.admin() as admin:
        agent.master = second
        assert agent.orders() == []  # `a` is still the node's: not handed out again
        assert agent.result(a).json() == {"state": "succeeded"}  # its result still lands
        assert [o["id"] for o in agent.orders()] == [b]  # the queued one survived
        assert agent.orders() == []
        states = [(x["id"], x["state"])
                  for x in admin.get(f"/api/v1/nodes/{agent.node_id}/actions").json()]  # fmt: skip
        assert states == [(b, "delivered"), (a, "succeeded")]


def test_lost_after_the_timeout_never_run_again(tmp_path: Path) -> None:
    env = {"LIVESTRAP_ACTION_TIMEOUT_S": "2"}
    with master_process(tmp_path / "data", heartbeat_s=1, env=env) as m, m.admin() as admin:
        agent = Agent(m)
        a, b = (queue(admin, agent.node_id, {"kind": k})["id"] for k in ("reboot", "reinspect"))
        assert [o["id"] for o in agent.orders()] == [a]
        # the node reboots mid-action and never reports: the master's sweep ends it
        deadline = time.monotonic() + 20
        while state_of(admin, a) != "lost":
            assert time.monotonic() < deadline, "the delivered action never showed lost"
            time.sleep(0.5)
        assert agent.result(a).status_code == 409  # too late: dropped
        assert [o["id"] for o in agent.orders()] == [b]  # the next one, never `a` again
        assert agent.orders() == []
        kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{agent.node_id}/timeline").json()]
        assert [k for k in kinds if k.startswith("action-")] == [
            "action-delivered", "action-lost", "action-delivered"]  # fmt: skip


def test_open_actions_hold_an_action_or_give_it_up(tmp_path: Path) -> None:
    env = {"LIVESTRAP_ACTION_TIMEOUT_S": "2"}
    with master_process(tmp_path / "data", heartbeat_s=1, env=env) as m, m.admin() as admin:
        agent = Agent(m)
        a, b = (queue(admin, agent.node_id, {"kind": k})["id"] for k in ("reboot", "reinspect"))
        assert [o["id"] for o in agent.orders(open_actions=[])] == [a]
        end = time.monotonic() + 6  # past the timeout and the grace; under the cap (8 s)
        while time.monotonic() < end:  # a long install: the agent lists it, it is kept
            assert agent.orders(open_actions=[a]) == []
            time.sleep(0.5)
        assert state_of(admin, a) == "delivered"
        # the agent restarted: it does not list `a`, which is lost, and `b` comes at once
        assert [o["id"] for o in agent.orders(open_actions=[])] == [b]
        detail = admin.get(f"/api/v1/actions/{a}").json()
        assert (detail["state"], detail["error"]) == ("lost", NOT_HELD)
