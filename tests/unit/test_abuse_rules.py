"""The MAC takeover rule, the new-node quota, bounded history and coalesced refusals,
on SQLite (master.inventory, master.history, master.refusals)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from livestrap.master.db import Database
from livestrap.master.events import record_event
from livestrap.master.history import History
from livestrap.master.inventory import Guard, Report, register, timeline
from livestrap.master.models import BootEvent, Node, NodeMac
from livestrap.master.refusals import RefusalLog

pytestmark = [pytest.mark.unit, pytest.mark.security]

UUID_A = "4c4c4544-0042-3510-8052-b2c04f4d4e31"
UUID_B = "4c4c4544-0042-3510-8052-b2c04f4d4e99"
MAC = "aa:bb:cc:00:00:01"


def report(
    uuid: str | None, serial: str | None, macs: tuple[str, ...] = (MAC,), **kw: Any
) -> Report:
    facts = {
        "system": {"uuid": uuid, "serial": serial},
        "nics": [{"name": f"eth{i}", "mac": m} for i, m in enumerate(macs)],
    }
    fields: dict[str, Any] = {
        "agent_version": "0.1.0", "image_id": "img", "boot_mac": macs[0], "node_id": None,
        "facts_hash": "h1", "facts": facts, "failures": [], "uptime_s": 60,
    }  # fmt: skip
    fields.update(kw)
    return Report(**fields)


def reg(db: Database, r: Report, now: float, guard: Guard | None = None) -> tuple[str, bool]:
    with db.session() as s:
        out = register(s, r, "10.0.0.9", 30, now=now, guard=guard)
    return out.node_id, out.created


def owner(db: Database, mac: str = MAC) -> str:
    with db.session() as s:
        row = s.get(NodeMac, mac)
        assert row is not None
        return row.node_id


def kinds(db: Database, node_id: str) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as s:
        return [(e.kind, e.detail) for e in timeline(s, node_id, []) if e.kind != "report"]


def serial(db: Database, node_id: str) -> Any:
    with db.session() as s:
        node = s.get(Node, node_id)
        assert node is not None
        return node.facts["system"]["serial"]


@pytest.mark.parametrize("victim_uuid", [None, UUID_A])
def test_an_online_nodes_mac_stays_and_both_timelines_say_so(
    db: Database, victim_uuid: str | None
) -> None:
    victim, _ = reg(db, report(victim_uuid, "REAL-1"), 1000)
    # 30 s later (victim online): another box claims its MAC, without or with a UUID
    intruder, created = reg(db, report(None if victim_uuid else UUID_B, "FAKE-9"), 1030)
    assert created and intruder != victim
    assert owner(db) == victim
    assert serial(db, victim) == "REAL-1"  # its facts were not overwritten
    conflict = {"mac": MAC, "owner": victim, "claimed_by": intruder}
    assert kinds(db, victim) == [("mac-conflict", conflict)]
    assert kinds(db, intruder) == [("mac-conflict", conflict)]


def test_an_offline_nodes_mac_moves_and_both_timelines_say_so(db: Database) -> None:
    old, _ = reg(db, report(UUID_A, "OLD"), 1000)
    new, created = reg(db, report(UUID_B, "NEW"), 1091)  # 3 heartbeats of 30 s of silence
    assert created and owner(db) == new
    moved = {"mac": MAC, "from": old, "to": new}
    assert kinds(db, old) == [("mac-moved", moved)]
    assert kinds(db, new) == [("mac-moved", moved)]


def test_an_online_node_without_uuid_is_matched_only_with_its_serial(db: Database) -> None:
    node, _ = reg(db, report(None, "S1"), 1000)
    again, created = reg(db, report(None, " s1 ", uptime_s=5), 1020)  # a quick reboot
    assert (again, created) == (node, False)
    offline, created = reg(db, report(None, "S2"), 1200)  # offline: MACs alone decide
    assert (offline, created) == (node, False)


def test_a_known_node_id_does_not_take_an_online_node_either(db: Database) -> None:
    node, _ = reg(db, report(None, "S1"), 1000)
    other, created = reg(db, report(None, "X", macs=("aa:bb:cc:00:00:09",), node_id=node), 1010)
    assert created and other != node and serial(db, node) == "S1"


def test_the_mac_conflict_events_have_a_budget(db: Database) -> None:
    reg(db, report(UUID_A, "A"), 1000)
    budget = iter([True, False, False])
    guard = Guard(event_allowed=lambda mac, ip, kind: next(budget))
    for n in range(3):
        reg(db, report(UUID_B, "B", uptime_s=n), 1010 + n, guard)
    with db.session() as s:
        count = s.scalar(select(func.count()).where(BootEvent.kind == "mac-conflict"))
    assert count == 2  # one conflict, on both timelines; the next two were over budget


def test_the_new_node_quota_refuses_creation_only(db: Database) -> None:
    waits = iter([0.0, 42.0])
    guard = Guard(new_node_wait=lambda ip: next(waits))
    first, created = reg(db, report(UUID_A, "A"), 1000, guard)
    with db.session() as s:
        refused = register(s, report(UUID_B, "B", macs=("aa:bb:cc:00:00:02",)), "10.0.0.9", 30,
                           now=1001, guard=guard)  # fmt: skip
    assert created and refused.retry_after_s == 42.0 and refused.node_id == ""
    assert reg(db, report(UUID_A, "A"), 1002, guard) == (first, False)  # known: no quota
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Node)) == 1
        assert s.get(NodeMac, "aa:bb:cc:00:00:02") is None


def events_of(db: Database, **where: Any) -> list[BootEvent]:
    with db.session() as s:
        return list(s.scalars(select(BootEvent).filter_by(**where).order_by(BootEvent.id)))


def test_history_keeps_the_newest_events_per_node_and_per_mac(db: Database) -> None:
    node, _ = reg(db, report(UUID_A, "A"), 1000)
    history = History(keep=20, unattached=10_000)
    with db.session() as s:
        for n in range(200):
            record_event(s, "script", mac=MAC, node_id=node, at=2000 + n, history=history)
            record_event(s, "script", mac="aa:bb:cc:00:00:77", at=2000 + n, history=history)
    mine = events_of(db, node_id=node)
    assert 20 <= len(mine) <= 22 and mine[-1].at == 2199  # the newest stay
    unknown = events_of(db, mac="aa:bb:cc:00:00:77")
    assert 20 <= len(unknown) <= 22 and unknown[-1].at == 2199


def test_history_caps_the_events_of_no_node_in_all(db: Database) -> None:
    history = History(keep=1000, unattached=100)
    with db.session() as s:
        for n in range(500):  # a different MAC each time: no per-MAC bound applies
            record_event(s, "script", mac=f"aa:bb:cc:00:{n >> 8:02x}:{n & 255:02x}",
                         at=n, history=history)  # fmt: skip
    left = events_of(db)
    assert 100 <= len(left) <= 101 and left[-1].at == 499


def test_history_of_zero_keeps_everything(db: Database) -> None:
    history = History(keep=0, unattached=0)
    with db.session() as s:
        for n in range(50):
            record_event(s, "script", mac=MAC, at=n, history=history)
    assert len(events_of(db)) == 50


class Clock:
    now = 5000.0

    def __call__(self) -> float:
        return self.now


def test_refusals_coalesce_per_address_reason_and_mac_per_window(db: Database) -> None:
    clock = Clock()
    log = RefusalLog(db, window_s=300, clock=clock)
    for _ in range(25):
        log.record("no discovery token", "10.0.0.5", MAC, "img")
    assert events_of(db) == [] and log.pending() == 25  # counted in memory only
    assert log.flush() == 1
    for _ in range(25):  # after a flush, still the same window: the same event
        log.record("no discovery token", "10.0.0.5", MAC, "img")
    log.record("wrong discovery token", "10.0.0.5", MAC, "img")
    log.record("no discovery token", "10.0.0.6", MAC, "img")
    log.record("no discovery token", "10.0.0.5", "aa:bb:cc:00:00:02", None)
    clock.now += 301
    log.record("no discovery token", "10.0.0.5", MAC, "img")
    log.flush()
    rows = [(e.ip, e.detail["reason"], e.mac, e.detail["count"]) for e in events_of(db)]
    assert rows == [
        ("10.0.0.5", "no discovery token", MAC, 50),
        ("10.0.0.5", "wrong discovery token", MAC, 1),
        ("10.0.0.6", "no discovery token", MAC, 1),
        ("10.0.0.5", "no discovery token", "aa:bb:cc:00:00:02", 1),
        ("10.0.0.5", "no discovery token", MAC, 1),  # the next window
    ]
    first = events_of(db)[0]
    assert first.at == 5000 and first.detail["last_at"].startswith("1970-01-01T01:23:20")
