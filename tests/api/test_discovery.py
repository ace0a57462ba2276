"""POST /api/v1/discovery against a real master process: token, identity, boots, races."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from livestrap.agent.collect import collect_all
from livestrap.agent.config import AgentConfig
from livestrap.agent.report import Reporter, facts_hash
from livestrap.master.db import Database
from livestrap.master.events import record_event
from livestrap.master.models import BootEvent
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

URL = "/api/v1/discovery"
_serial = itertools.count(1)


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("discovery") / "data", heartbeat_s=1) as m:
        yield m


@pytest.fixture(scope="module")
def db(master: Master) -> Iterator[Database]:
    database = Database(master.database_url)
    yield database
    database.dispose()


def machine(system_uuid: str | None = "new") -> dict[str, Any]:
    """Facts of a machine nobody has reported yet (two NICs, the first one PXE-boots)."""
    n = next(_serial)
    if system_uuid == "new":
        system_uuid = str(uuid.uuid4()).upper()  # dmidecode prints upper case
    return {
        "system": {
            "vendor": "QEMU",
            "product": "Standard PC",
            "serial": f"S{n}",
            "uuid": system_uuid,
        },
        "cpu": {"model": "qemu64", "count": 2},
        "nics": [
            {"name": "enp0s3", "mac": f"52:54:00:{n >> 8:02x}:{n & 255:02x}:01", "pxe": True},
            {"name": "enp0s4", "mac": f"52:54:00:{n >> 8:02x}:{n & 255:02x}:02", "pxe": False},
        ],
    }


def body(facts: dict[str, Any], *, send_facts: bool = True, **kw: Any) -> dict[str, Any]:
    """What the agent sends (livestrap.agent.report protocol version 1)."""
    fields = {
        "agent_version": "0.1.0",
        "image_id": "img-1",
        "boot_mac": facts["nics"][0]["mac"],
        "node_id": None,
        "facts_hash": facts_hash(facts),
        "facts": facts if send_facts else None,
        "failures": [{"collector": "memory", "error": "dmidecode missing"}],
        "uptime_s": 60,
    }
    fields.update(kw)
    return fields


def post(master: Master, payload: Any, **kw: Any) -> httpx.Response:
    with master.discovery() as client:
        return client.post(URL, json=payload, **kw)


def node(master: Master, node_id: str) -> dict[str, Any]:
    with master.admin() as admin:
        resp = admin.get(f"/api/v1/nodes/{node_id}")
        resp.raise_for_status()
        data: dict[str, Any] = resp.json()
        return data


def nodes_with_mac(master: Master, mac: str) -> list[dict[str, Any]]:
    with master.admin() as admin:
        data: list[dict[str, Any]] = admin.get("/api/v1/nodes", params={"mac": mac}).json()
        return data


def events(db: Database, **where: Any) -> list[BootEvent]:
    with db.session() as s:
        query = select(BootEvent).filter_by(**where).order_by(BootEvent.at)
        return list(s.scalars(query))


def refused_events(db: Database, mac: str, total: int) -> list[BootEvent]:
    """The MAC's `refused` events once they count `total` (the master writes its counts
    every couple of seconds: master.refusals)."""
    deadline = time.monotonic() + 10
    while True:
        found = events(db, kind="refused", mac=mac)
        if sum(e.detail["count"] for e in found) >= total or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_refused_without_or_with_a_wrong_token(master: Master, db: Database) -> None:
    facts = machine()
    mac = facts["nics"][0]["mac"]
    with master.anonymous() as anon:
        missing = anon.post(URL, json=body(facts))
    with master.discovery("not-the-token") as client:
        wrong = client.post(URL, json=body(facts))
    with master.admin() as admin:  # the admin token is not a discovery token either
        admin_tok = admin.post(URL, json=body(facts))
    assert (missing.status_code, wrong.status_code, admin_tok.status_code) == (401, 401, 401)
    assert "discovery token" in missing.json()["detail"]
    refused = refused_events(db, mac, 3)
    # Coalesced: one event per (address, reason, MAC) per window, with a count.
    assert [(e.detail["reason"], e.detail["count"]) for e in refused] == [
        ("no discovery token", 1),
        ("wrong discovery token", 2),
    ]
    assert all(e.ip == "127.0.0.1" and e.image_id == "img-1" for e in refused)
    assert nodes_with_mac(master, mac) == []
    # The token is checked before the body is read: a bad body still counts as refused,
    # and so does one that is not JSON at all.
    with master.anonymous() as anon:
        invalid = anon.post(URL, json={"boot_mac": mac.upper(), "uptime_s": "soon"})
        garbage = anon.post(URL, content=b"{", headers={"Content-Type": "application/json"})
    assert (invalid.status_code, garbage.status_code) == (401, 401)
    assert sum(e.detail["count"] for e in refused_events(db, mac, 4)) == 4


def test_same_report_twice_is_one_node(master: Master) -> None:
    facts = machine()
    first = post(master, body(facts))
    again = post(master, body(facts, uptime_s=61))
    assert first.status_code == 201 and again.status_code == 200
    answer = first.json()
    assert set(answer) == {"node_id", "heartbeat_s", "facts_required", "actions"}
    assert answer["actions"] == []  # none queued
    assert answer["heartbeat_s"] == 1 and answer["facts_required"] is False
    assert again.json()["node_id"] == answer["node_id"]
    assert [n["id"] for n in nodes_with_mac(master, facts["nics"][1]["mac"])] == [answer["node_id"]]
    shown = node(master, answer["node_id"])
    assert shown["boots"] == 1
    assert shown["system_uuid"] == facts["system"]["uuid"].lower()
    assert shown["facts"] == facts and shown["facts_hash"] == facts_hash(facts)
    assert shown["failures"] == [{"collector": "memory", "error": "dmidecode missing"}]


def test_same_machine_from_a_new_ip_updates_its_node(master: Master) -> None:
    facts = machine()
    node_id = post(master, body(facts)).json()["node_id"]
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    headers = {"Authorization": f"Bearer {master.discovery_token}"}
    with httpx.Client(base_url=master.url, transport=transport, headers=headers) as client:
        resp = client.post(URL, json=body(facts))
    assert resp.status_code == 200 and resp.json()["node_id"] == node_id
    assert node(master, node_id)["last_ip"] == "127.0.0.2"


def test_a_serial_less_machine_rebooted_to_a_new_ip_is_told_to_wait(master: Master) -> None:
    """Review: while its node still showed online, the reboot made a second node (the
    agent's node id is gone with its memory, and its address changed). heartbeat_s 1:
    the node shows offline 3 s after its last report."""
    facts = machine(None)
    facts["system"]["serial"] = "To be filled by O.E.M."
    node_id = post(master, body(facts)).json()["node_id"]
    transport = httpx.HTTPTransport(local_address="127.0.0.3")
    headers = {"Authorization": f"Bearer {master.discovery_token}"}
    with httpx.Client(base_url=master.url, transport=transport, headers=headers) as client:
        told = client.post(URL, json=body(facts, uptime_s=0))
        assert told.status_code == 429, told.text
        wait = int(told.headers["retry-after"])
        assert 1 <= wait <= 4 and "rebooted" in told.json()["detail"]
        assert node_id not in told.text
        time.sleep(wait)
        again = client.post(URL, json=body(facts, uptime_s=wait))
    assert again.status_code == 200, again.text
    assert again.json()["node_id"] == node_id
    assert [n["id"] for n in nodes_with_mac(master, facts["nics"][1]["mac"])] == [node_id]
    assert node(master, node_id)["last_ip"] == "127.0.0.3"
    with master.admin() as admin:
        timeline = admin.get(f"/api/v1/nodes/{node_id}/timeline").json()
    conflicts = [e["detail"] for e in timeline if e["kind"] == "mac-conflict"]
    assert [(d["owner"], d["claimed_by"]) for d in conflicts] == [(node_id, None)]


def test_two_machines_are_two_nodes(master: Master) -> None:
    a = post(master, body(machine())).json()["node_id"]
    b = post(master, body(machine())).json()["node_id"]
    assert a != b


@pytest.mark.parametrize("placeholder", [None, "00000000-0000-0000-0000-000000000000"])
def test_without_a_sane_uuid_the_macs_decide(master: Master, placeholder: str | None) -> None:
    facts = machine(placeholder)
    first = post(master, body(facts))
    # Same NICs, reported in another order and format, from another boot: same node.
    facts2 = {**facts, "nics": [{**nic, "mac": nic["mac"].upper()} for nic in facts["nics"][::-1]]}
    second = post(master, body(facts2, boot_mac=facts["nics"][0]["mac"].replace(":", "-")))
    other = post(master, body(machine(placeholder)))
    assert (first.status_code, second.status_code, other.status_code) == (201, 200, 201)
    assert first.json()["node_id"] == second.json()["node_id"] != other.json()["node_id"]
    assert node(master, first.json()["node_id"])["system_uuid"] is None


def test_heartbeats_and_facts_required(master: Master) -> None:
    facts = machine()
    node_id = post(master, body(facts)).json()["node_id"]
    beat = post(master, body(facts, send_facts=False, node_id=node_id, uptime_s=62))
    assert beat.status_code == 200
    assert beat.json() == {"node_id": node_id, "heartbeat_s": 1, "facts_required": False,
                           "actions": []}  # fmt: skip
    changed = post(master, body(facts, send_facts=False, node_id=node_id, facts_hash="0" * 64))
    assert changed.json()["facts_required"] is True
    unknown = post(master, body(facts, send_facts=False, node_id="gone"))
    assert unknown.json() == {"node_id": "gone", "heartbeat_s": 1, "facts_required": True,
                              "actions": []}  # fmt: skip
    anonymous = post(master, body(facts, send_facts=False))
    assert anonymous.json()["facts_required"] is True


def test_deleted_node_comes_back_once_facts_arrive(master: Master) -> None:
    facts = machine()
    node_id = post(master, body(facts)).json()["node_id"]
    with master.admin() as admin:
        assert admin.delete(f"/api/v1/nodes/{node_id}").status_code == 204
    beat = post(master, body(facts, send_facts=False, node_id=node_id))
    assert beat.json()["facts_required"] is True
    again = post(master, body(facts, node_id=node_id))
    assert again.status_code == 201 and again.json()["node_id"] != node_id


def test_a_reboot_is_a_new_boot(master: Master) -> None:
    facts = machine()
    node_id = post(master, body(facts, uptime_s=300)).json()["node_id"]
    post(master, body(facts, uptime_s=301))  # agent restarted: same boot
    post(master, body(facts, uptime_s=5))  # uptime went back: rebooted
    shown = node(master, node_id)
    assert shown["boots"] == 2
    with master.admin() as admin:
        timeline = admin.get(f"/api/v1/nodes/{node_id}/timeline").json()
    assert [(e["kind"], e["detail"]["boot"]) for e in timeline] == [("report", 1), ("report", 2)]


def test_timeline_keeps_the_boot_steps_before_the_report(master: Master, db: Database) -> None:
    facts = machine()
    mac = facts["nics"][0]["mac"]
    with db.session() as s:  # what /boot records while the node is still unknown
        for kind in ("script", "kernel", "initrd", "squashfs-start", "squashfs-end"):
            record_event(s, kind, mac=mac.upper(), ip="10.0.2.15", image_id="img-1")
    node_id = post(master, body(facts)).json()["node_id"]
    with master.admin() as admin:
        timeline = admin.get(f"/api/v1/nodes/{node_id}/timeline").json()
    assert [e["kind"] for e in timeline] == [
        "script",
        "kernel",
        "initrd",
        "squashfs-start",
        "squashfs-end",
        "report",
    ]
    assert [e["at"] for e in timeline] == sorted(e["at"] for e in timeline)
    assert timeline[0] == {
        "kind": "script",
        "at": timeline[0]["at"],
        "mac": mac,
        "ip": "10.0.2.15",
        "image_id": "img-1",
        "detail": {},
    }
    # A refused report of a known node's MAC shows up in its timeline too.
    with master.discovery("stale-token") as client:
        assert client.post(URL, json=body(facts)).status_code == 401
    with master.admin() as admin:
        kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{node_id}/timeline").json()]
    assert kinds[-1] == "refused"


@pytest.mark.parametrize("system_uuid", ["new", None])
def test_simultaneous_first_reports_make_one_node(
    master: Master, db: Database, system_uuid: str | None
) -> None:
    facts = machine(system_uuid)
    start = threading.Barrier(20)
    answers: list[httpx.Response] = []

    def report() -> None:
        with master.discovery() as client:
            start.wait()
            answers.append(client.post(URL, json=body(facts)))

    threads = [threading.Thread(target=report) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(a.status_code for a in answers) == [200] * 19 + [201]
    assert len({a.json()["node_id"] for a in answers}) == 1
    node_id = answers[0].json()["node_id"]
    assert [n["id"] for n in nodes_with_mac(master, facts["nics"][1]["mac"])] == [node_id]
    assert node(master, node_id)["boots"] == 1
    assert len(events(db, kind="report", node_id=node_id)) == 1


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        {"facts": []},
        {"facts": {"system": "box"}},
        {"facts": {"nics": [{"mac": 5}]}},
        {"facts": {"nics": {"mac": "aa:bb:cc:dd:ee:ff"}}},
        {"facts": {"system": {"uuid": 7}}},
        {"boot_mac": "not-a-mac"},
        {"uptime_s": "12"},
        {"uptime_s": -1},
        {"failures": [{"collector": "cpu"}]},
        {"agent_version": "x" * 65},
        {"node_id": 12},
        {"open_actions": "0b6e8f6c"},
        {"open_actions": ["../nodes"]},
        {"open_actions": ["a" * 37]},
        {"open_actions": ["0b6e8f6c"] * 41},
    ],
)
def test_malformed_bodies_are_422(master: Master, payload: Any) -> None:
    facts = machine()
    data = {**body(facts), **payload} if isinstance(payload, dict) else payload
    resp = post(master, data)
    assert resp.status_code == 422, resp.text
    assert "detail" in resp.json()


def test_nan_and_infinity_never_make_a_500(master: Master) -> None:
    """Python's JSON parser accepts NaN/Infinity; no JSON answer can carry them."""
    facts = machine()
    text = json.dumps(body(facts)).replace('"count": 2', '"count": NaN')
    headers = {"Content-Type": "application/json"}
    with master.discovery() as client:
        stored = client.post(URL, content=text.encode(), headers=headers)
        invalid = client.post(
            URL,
            content=text.replace('"uptime_s": 60', '"uptime_s": Infinity').encode(),
            headers=headers,
        )
    assert stored.status_code == 201, stored.text  # a NaN fact is kept as null
    assert node(master, stored.json()["node_id"])["facts"]["cpu"] == {
        "model": "qemu64",
        "count": None,
    }
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["loc"][-1] == "uptime_s"


def test_extra_fact_keys_are_kept(master: Master) -> None:
    facts = machine()
    facts["gpu"] = [{"model": "A100", "memory": 80}]
    facts["system"]["tpm"] = {"version": "2.0"}
    facts["nics"][0]["lldp"] = {"switch": "sw1", "port": "Eth1/1"}
    resp = post(master, body(facts, future_field=True))
    assert resp.status_code == 201
    assert node(master, resp.json()["node_id"])["facts"] == facts


def test_boot_script_request_lands_in_the_timeline(master: Master) -> None:
    """The iPXE script request (routes/boot.py) comes first in the node's timeline."""
    facts = machine()
    mac = facts["nics"][0]["mac"]
    with master.anonymous() as anon:
        script = anon.get("/boot/ipxe", params={"mac": mac.replace(":", "-")})
    if script.status_code == 404:
        pytest.skip("GET /boot/ipxe is not there yet")
    assert script.status_code == 200
    node_id = post(master, body(facts)).json()["node_id"]
    with master.admin() as admin:
        timeline = admin.get(f"/api/v1/nodes/{node_id}/timeline").json()
    assert [(e["kind"], e["mac"]) for e in timeline] == [("script", mac), ("report", mac)]


def test_the_real_agent_registers_then_heartbeats(master: Master) -> None:
    """livestrap.agent's own Reporter, facts from the captured QEMU guest tree."""
    root = Path(__file__).parent.parent / "fixtures/agent/qemu-guest"

    def saved_tool(argv: list[str]) -> str | None:
        saved = root / "_tools" / "_".join(argv)
        return saved.read_text() if saved.is_file() else None

    config = AgentConfig(
        url=master.url, token=master.discovery_token, image="img-1", boot_mac="52:54:00:12:34:56"
    )
    sent: list[dict[str, Any]] = []
    reporter = Reporter(
        config, lambda: collect_all(config, root=root, runner=saved_tool), sleep=lambda _: None
    )
    for _ in range(2):  # the first report carries facts, the second is a heartbeat
        sent.append(reporter.build_body())
        reporter.step()
        assert reporter.last_ok
    assert sent[0]["facts"] is not None and sent[1]["facts"] is None
    assert reporter.node_id
    shown = node(master, reporter.node_id)
    assert shown["facts"]["system"]["uuid"] and shown["system_uuid"]
    assert shown["facts_hash"] == facts_hash(shown["facts"])
    assert "52:54:00:12:34:56" in shown["macs"]
