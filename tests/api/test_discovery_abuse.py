"""The public discovery token and the open /boot routes under abuse, against a real master
with small limits: 429 + Retry-After per address, the new-node quota, the per-MAC event
budget, coalesced refusals, bounded history, paged lists, X-Forwarded-For trust."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from livestrap.master.db import Database
from livestrap.master.events import record_event
from livestrap.master.models import BootEvent
from masterproc import Master, master_process

pytestmark = [pytest.mark.integration, pytest.mark.security]

URL = "/api/v1/discovery"
LIMITS = {
    "LIVESTRAP_DISCOVERY_BURST": "30",
    "LIVESTRAP_DISCOVERY_RATE": "0.1",
    "LIVESTRAP_REFUSED_BURST": "30",
    "LIVESTRAP_REFUSED_RATE": "0.1",
    "LIVESTRAP_NEW_NODES_PER_ADDRESS": "3",
    "LIVESTRAP_BOOT_BURST": "10",
    "LIVESTRAP_BOOT_RATE": "0.1",
    "LIVESTRAP_MAC_EVENT_BURST": "5",
    "LIVESTRAP_MAC_EVENT_RATE": "0.01",
}
_n = itertools.count(1)
_addr = itertools.count(10)


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("abuse") / "data", env=LIMITS) as m:
        yield m


def client(master: Master, token: str | None = "discovery", ip: str | None = None) -> httpx.Client:
    """A client from its own loopback address (127.0.0.N): its own buckets."""
    ip = ip or f"127.0.0.{next(_addr)}"
    headers = {}
    if token == "discovery":
        headers["Authorization"] = f"Bearer {master.discovery_token}"
    elif token == "admin":
        headers["Authorization"] = f"Bearer {master.admin_token}"
    transport = httpx.HTTPTransport(local_address=ip)
    return httpx.Client(base_url=master.url, transport=transport, headers=headers, timeout=30)


def machine(uuid_: str | None = "new", serial: str | None = None) -> dict[str, Any]:
    n = next(_n)
    mac = f"52:54:01:{n >> 8:02x}:{n & 255:02x}:01"
    system = {"uuid": str(uuid.uuid4()) if uuid_ == "new" else uuid_, "serial": serial or f"S{n}"}
    return {"system": system, "nics": [{"name": "eth0", "mac": mac}]}


def body(facts: dict[str, Any] | None, mac: str, **kw: Any) -> dict[str, Any]:
    return {"agent_version": "0.1.0", "image_id": "img-1", "boot_mac": mac, "node_id": None,
            "facts_hash": "h", "facts": facts, "failures": [], "uptime_s": 60, **kw}  # fmt: skip


def register(c: httpx.Client, facts: dict[str, Any]) -> httpx.Response:
    return c.post(URL, json=body(facts, facts["nics"][0]["mac"]))


def assert_429(resp: httpx.Response) -> None:
    assert resp.status_code == 429, resp.text
    assert int(resp.headers["retry-after"]) >= 1
    assert "too many" in resp.json()["detail"]


def test_discovery_is_rate_limited_per_address(master: Master) -> None:
    mac = "52:54:01:ff:00:01"
    with client(master) as c, client(master) as other:
        answers = [c.post(URL, json=body(None, mac)).status_code for _ in range(30)]
        assert answers == [200] * 30  # heartbeats of no known node: facts_required
        assert_429(c.post(URL, json=body(None, mac)))
        assert other.post(URL, json=body(None, mac)).status_code == 200  # its own bucket


def test_refused_reports_do_not_spend_the_bucket_of_real_nodes(master: Master) -> None:
    """Review: the limit was taken before the token check, so a flood without the token
    from a shared NAT address spent the bucket its real nodes share."""
    mac = "52:54:01:ff:00:02"
    ip = f"127.0.0.{next(_addr)}"
    with client(master, token=None, ip=ip) as anon, client(master, ip=ip) as node:
        assert [anon.post(URL, json=body(None, mac)).status_code for _ in range(30)] == [401] * 30
        assert_429(anon.post(URL, json=body(None, mac)))  # refused reports: their own bucket
        assert node.post(URL, json=body(None, mac)).status_code == 200


def test_new_nodes_per_address_have_a_quota(master: Master) -> None:
    with client(master) as c, client(master) as other:
        known = machine()
        statuses = [register(c, f).status_code for f in [known, machine(), machine()]]
        assert statuses == [201, 201, 201]
        assert_429(register(c, machine()))
        assert register(c, known).status_code == 200  # a known node: no quota needed
        assert register(other, machine()).status_code == 201


def test_boot_requests_are_rate_limited_per_address(master: Master) -> None:
    with client(master, token=None) as c:
        assert [c.get("/boot/ipxe").status_code for _ in range(10)] == [200] * 10
        assert_429(c.get("/boot/ipxe"))
        assert_429(c.get("/boot/images/x/vmlinuz"))


def events(master: Master, **where: Any) -> list[BootEvent]:
    db = Database(master.database_url)
    try:
        with db.session() as s:
            return list(s.scalars(select(BootEvent).filter_by(**where).order_by(BootEvent.id)))
    finally:
        db.dispose()


def wait_for(master: Master, kind: str, mac: str, field: str, total: int) -> list[BootEvent]:
    """Counted events are written every couple of seconds (master.refusals)."""
    deadline = time.monotonic() + 10
    while True:
        found = events(master, kind=kind, mac=mac)
        if sum(e.detail[field] for e in found) >= total or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_a_flooded_mac_keeps_the_events_of_its_own_address(master: Master) -> None:
    """Review: the budget was per MAC, spent through a caller-chosen ?mac=, so a flood
    silenced the node's real events; now per (MAC, address), the rest counted."""
    victim = "52:54:01:ee:00:01"
    attacker, home = f"127.0.0.{next(_addr)}", f"127.0.0.{next(_addr)}"
    with client(master, token=None, ip=attacker) as c:
        assert all(c.get("/boot/ipxe", params={"mac": victim}).status_code == 200
                   for _ in range(10))  # fmt: skip
    with client(master, token=None, ip=home) as c:
        assert c.get("/boot/ipxe", params={"mac": victim}).status_code == 200
    scripts = events(master, kind="script", mac=victim)
    assert [e.ip for e in scripts] == [attacker] * 5 + [home]  # 5 of the 10, then its own
    suppressed = wait_for(master, "suppressed", victim, "suppressed", 5)
    assert [(e.ip, e.detail["suppressed"]) for e in suppressed] == [(attacker, 5)]


def test_refused_reports_are_one_event_with_a_count(master: Master) -> None:
    mac = "52:54:01:dd:00:01"
    with client(master, token="wrong") as c:
        c.headers["Authorization"] = "Bearer stale"
        assert {c.post(URL, json=body(None, mac)).status_code for _ in range(25)} == {401}
    refused = wait_for(master, "refused", mac, "count", 25)
    assert [(e.detail["reason"], e.detail["count"]) for e in refused] == [
        ("wrong discovery token", 25)
    ]


def test_a_report_cannot_take_an_online_node_quietly(master: Master) -> None:
    facts = machine(uuid_=None, serial="REAL")
    mac = facts["nics"][0]["mac"]
    with client(master) as c, client(master) as attacker, client(master, "admin") as admin:
        victim = register(c, facts).json()["node_id"]
        fake = {**facts, "system": {"uuid": None, "serial": "FAKE"}}
        intruder = register(attacker, fake)
        assert intruder.status_code == 201 and intruder.json()["node_id"] != victim
        assert [n["id"] for n in admin.get("/api/v1/nodes", params={"mac": mac}).json()] == [victim]
        assert admin.get(f"/api/v1/nodes/{victim}").json()["serial"] == "REAL"
        for node_id in (victim, intruder.json()["node_id"]):
            kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{node_id}/timeline").json()]
            assert "mac-conflict" in kinds


def test_a_report_cannot_take_an_online_node_by_its_uuid(master: Master) -> None:
    """Review: the UUID, which PXE broadcasts (DHCP option 97), matched before the rule."""
    facts = machine(serial="REAL")
    with client(master) as c, client(master) as attacker, client(master, "admin") as admin:
        victim = register(c, facts).json()["node_id"]
        fake = {"system": {"uuid": facts["system"]["uuid"], "serial": "FAKE"},
                "nics": [{"name": "eth0", "mac": "52:54:01:ab:00:01"}]}  # fmt: skip
        intruder = register(attacker, fake)
        assert intruder.status_code == 201 and intruder.json()["node_id"] != victim
        shown = admin.get(f"/api/v1/nodes/{victim}").json()
        assert shown["serial"] == "REAL" and shown["system_uuid"] == facts["system"]["uuid"]
        for node_id in (victim, intruder.json()["node_id"]):
            kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{node_id}/timeline").json()]
            assert "uuid-conflict" in kinds


def test_new_nodes_have_a_ceiling_in_all(tmp_path: Path) -> None:
    env = {"LIVESTRAP_NEW_NODES_TOTAL": "2"}
    with master_process(tmp_path / "data", env=env) as m:
        answers = []
        for _ in range(3):
            with client(m) as c:  # a new address each time: not the per-address quota
                answers.append(register(c, machine()))
    assert [a.status_code for a in answers[:2]] == [201, 201]
    assert_429(answers[2])


def test_node_list_and_timeline_come_in_pages(master: Master) -> None:
    made: list[str] = []
    for _ in range(2):
        with client(master) as c:
            made += [register(c, machine()).json()["node_id"] for _ in range(3)]
    with client(master, "admin") as admin:
        everything = [n["id"] for n in admin.get("/api/v1/nodes").json()]
        pages: list[str] = []
        params: dict[str, Any] = {"limit": 2}
        while True:
            resp = admin.get("/api/v1/nodes", params=params)
            assert resp.status_code == 200 and len(resp.json()) <= 2
            pages += [n["id"] for n in resp.json()]
            if "x-next-cursor" not in resp.headers:
                break
            assert 'rel="next"' in resp.headers["link"]
            params["after"] = resp.headers["x-next-cursor"]
        assert pages == everything and set(made) <= set(pages)
        for bad in ({"limit": 0}, {"limit": 1001}, {"after": "nonsense"}, {"after": "nan,x"}):
            assert admin.get("/api/v1/nodes", params=bad).status_code == 422
        node_id = made[0]
        db = Database(master.database_url)
        with db.session() as s:
            for n in range(7):
                record_event(s, "kernel", node_id=node_id, detail={"n": n})
        db.dispose()
        whole = admin.get(f"/api/v1/nodes/{node_id}/timeline").json()
        first = admin.get(f"/api/v1/nodes/{node_id}/timeline", params={"limit": 5})
        rest = admin.get(
            f"/api/v1/nodes/{node_id}/timeline",
            params={"limit": 5, "after": first.headers["x-next-cursor"]},
        )
        assert first.json() + rest.json() == whole and len(whole) == 8
        assert "x-next-cursor" not in rest.headers


def test_forwarded_for_is_trusted_from_loopback_only(master: Master) -> None:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 (nginx on the master) only."""
    spoof = {"X-Forwarded-For": "10.99.0.1"}
    with client(master, ip="127.0.0.3") as far, client(master, ip="127.0.0.1") as nginx:
        a = far.post(URL, json=body(machine(), "52:54:01:cc:00:01"), headers=spoof)
        b = nginx.post(URL, json=body(machine(), "52:54:01:cc:00:02"), headers=spoof)
    with client(master, "admin") as admin:
        ips = [admin.get(f"/api/v1/nodes/{r.json()['node_id']}").json()["last_ip"] for r in (a, b)]
    assert ips == ["127.0.0.3", "10.99.0.1"]


def test_history_per_node_is_bounded(tmp_path: Path) -> None:
    env = {"LIVESTRAP_EVENTS_PER_NODE": "20", "LIVESTRAP_MAC_EVENT_RATE": "0",
           "LIVESTRAP_BOOT_RATE": "0"}  # fmt: skip
    with master_process(tmp_path / "data", env=env) as m, m.anonymous() as c:
        mac = "52:54:01:bb:00:01"
        for _ in range(100):
            c.get("/boot/ipxe", params={"mac": mac})
        assert 20 <= len(events(m, mac=mac)) <= 22
