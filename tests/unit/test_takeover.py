"""Review findings on identity and counting (master.identity, master.inventory,
master.guards, master.refusals): a public UUID or a missing serial does not take an
online node over, yet a serial-less node rebooting to a new address stays one node,
identity changes are recorded, the event budget is per (MAC, address)
with what is over it counted, refusals cost no database write, and new nodes have a
ceiling in all."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from livestrap.master.config import MasterSettings
from livestrap.master.db import Database
from livestrap.master.guards import Guards
from livestrap.master.identity import MAX_REBOOT_WAIT_S, reboot_wait, serial_of
from livestrap.master.inventory import Guard, Outcome, Report, heartbeat, register
from livestrap.master.models import BootEvent, Node, NodeMac
from livestrap.master.refusals import RefusalLog

pytestmark = [pytest.mark.unit, pytest.mark.security]

UUID_A = "4c4c4544-0042-3510-8052-b2c04f4d4e31"
MAC = "aa:bb:cc:00:00:01"
HOME, ELSEWHERE = "10.0.0.9", "10.0.0.66"


def report(
    uuid: str | None, serial: str | None, macs: tuple[str, ...] = (MAC,), **kw: Any
) -> Report:
    facts = {
        "system": {"uuid": uuid, "serial": serial, "vendor": "QEMU"},
        "nics": [{"name": f"eth{i}", "mac": m} for i, m in enumerate(macs)],
    }
    fields: dict[str, Any] = {
        "agent_version": "0.1.0", "image_id": "img", "boot_mac": macs[0], "node_id": None,
        "facts_hash": "h1", "facts": facts, "failures": [], "uptime_s": 60,
    }  # fmt: skip
    fields.update(kw)
    return Report(**fields)


def reg(db: Database, r: Report, now: float, ip: str = HOME, guard: Guard | None = None) -> Any:
    with db.session() as s:
        out = register(s, r, ip, 30, now=now, guard=guard)
    return out.node_id, out.created


def node(db: Database, node_id: str) -> Node:
    with db.session() as s:
        found = s.get(Node, node_id)
        assert found is not None
        s.expunge(found)
        return found


def kinds(db: Database, node_id: str) -> list[tuple[str, dict[str, Any]]]:
    with db.session() as s:
        query = select(BootEvent).where(BootEvent.node_id == node_id).order_by(BootEvent.id)
        return [(e.kind, e.detail) for e in s.scalars(query) if e.kind != "report"]


@pytest.mark.parametrize("serial", ["FAKE-9", None, "To be filled by O.E.M."])
def test_the_victims_uuid_does_not_take_an_online_node(db: Database, serial: str | None) -> None:
    """Review: a matching UUID returned the node before the takeover rule was checked."""
    victim, _ = reg(db, report(UUID_A, "REAL-1"), 1000)
    other_mac = "aa:bb:cc:00:00:99"
    intruder, created = reg(db, report(UUID_A, serial, (other_mac,)), 1030, ip=ELSEWHERE)
    assert created and intruder != victim
    kept = node(db, victim)
    assert kept.system_uuid == UUID_A and kept.facts["system"]["serial"] == "REAL-1"
    assert kept.last_ip == HOME
    assert node(db, intruder).system_uuid is None  # the UUID stays with its owner
    conflict = {"uuid": UUID_A, "owner": victim, "claimed_by": intruder}
    assert kinds(db, victim) == [("uuid-conflict", conflict)]
    assert kinds(db, intruder) == [("uuid-conflict", conflict)]


@pytest.mark.parametrize("serials", [(None, None), ("0000000", "To be filled by O.E.M.")])
def test_an_online_node_without_a_real_serial_is_not_taken_by_its_mac(
    db: Database, serials: tuple[str | None, str | None]
) -> None:
    """Review: "" == "" let any report listing its MAC replace a serial-less node."""
    victim, _ = reg(db, report(None, serials[0]), 1000)
    intruder, created = reg(db, report(None, serials[1]), 1030, ip=ELSEWHERE)
    assert created and intruder != victim
    assert node(db, victim).last_ip == HOME
    assert [k for k, _ in kinds(db, victim)] == ["mac-conflict"]


@pytest.mark.parametrize("uuid", [UUID_A, None])
def test_a_node_rebooting_while_online_is_itself_without_noise(
    db: Database, uuid: str | None
) -> None:
    """No serial (a QEMU VM): its address, or the node id it was given, says it is itself."""
    first, _ = reg(db, report(uuid, None), 1000)
    again, created = reg(db, report(uuid, None, uptime_s=5), 1040)  # rebooted, same address
    assert (again, created) == (first, False)
    moved, created = reg(db, report(uuid, None, node_id=first, uptime_s=9), 1050, ip="10.0.0.7")
    assert (moved, created) == (first, False)  # a new lease, its own agent
    assert node(db, first).boots == 2 and kinds(db, first) == []
    offline, created = reg(db, report(uuid, None, uptime_s=5), 1300, ip="10.0.0.8")
    assert (offline, created) == (first, False) and kinds(db, first) == []


def test_a_report_that_changes_an_online_nodes_identity_is_recorded(db: Database) -> None:
    first, _ = reg(db, report(None, "S1"), 1000)
    new_mac = "aa:bb:cc:00:00:02"
    again, _ = reg(db, report(UUID_A, "S1", (MAC, new_mac), uptime_s=70), 1010)
    assert again == first
    assert kinds(db, first) == [
        ("identity-changed", {"uuid": {"from": None, "to": UUID_A},
                              "macs": {"added": [new_mac], "removed": []}}),
    ]  # fmt: skip
    reg(db, report(UUID_A, "S1", (MAC, new_mac), uptime_s=80), 1020)  # unchanged: nothing
    reg(db, report(UUID_A, "S1", (MAC,), uptime_s=5), 1300)  # offline: nothing either
    assert len(kinds(db, first)) == 1


def test_placeholder_serials_are_no_serial() -> None:
    for junk in ("", " ", "To be filled by O.E.M.", "0000000000", "xxxxxxxx", "Default string"):
        assert serial_of({"system": {"serial": junk}}) == ""
    assert serial_of({"system": {"serial": " Ab12 "}}) == "ab12"


@pytest.fixture
def guards(db: Database, tmp_path: Path) -> Guards:
    cfg = MasterSettings(data_dir=tmp_path, mac_event_burst=3, mac_event_rate=0.001,
                         new_nodes_per_address=5, new_nodes_total=4)  # fmt: skip
    return Guards.from_settings(cfg, db)


def test_the_event_budget_is_per_mac_and_address_and_the_rest_is_counted(
    db: Database, guards: Guards
) -> None:
    """Review: one address flooding `?mac=` silenced the node's own events."""
    assert [guards.event_allowed(MAC, "10.0.0.66", "script") for _ in range(10)] == (
        [True] * 3 + [False] * 7
    )
    assert all(guards.event_allowed(MAC, HOME, "script") for _ in range(3))  # its own budget
    assert not guards.event_allowed(MAC, HOME, "kernel")
    guards.flush()
    with db.session() as s:
        rows = s.scalars(select(BootEvent).where(BootEvent.kind == "suppressed"))
        found = sorted((e.ip, e.mac, e.detail["suppressed"], e.detail["last_kind"]) for e in rows)
    assert found == [("10.0.0.66", MAC, 7, "script"), (HOME, MAC, 1, "kernel")]


def test_new_nodes_have_a_ceiling_in_all(guards: Guards, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "livestrap.master"):
        waits = [guards.new_node_wait(f"10.0.1.{n}") for n in range(6)]
    assert waits[:4] == [0.0] * 4 and all(w > 0 for w in waits[4:])
    assert sum("LIVESTRAP_NEW_NODES_TOTAL" in r.getMessage() for r in caplog.records) == 1
    off = MasterSettings(data_dir=Path("/nonexistent"), new_nodes_total=0)
    assert not Guards.from_settings(off, guards.refusals.db).new_nodes_total.enabled


class NoDatabase(Database):
    def __init__(self) -> None:
        pass

    def session(self) -> Any:
        raise AssertionError("a refusal must not touch the database")


def test_refusals_are_counted_in_memory_and_bounded() -> None:
    """Review: every refusal was a commit, under one lock, in the threadpool."""
    log = RefusalLog(NoDatabase(), window_s=300)
    for n in range(30_000):
        log.record("no discovery token", f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}", None, None)
    assert log.pending() == 30_000
    assert len(log._pending) <= 10_001  # the rest went to the catch-all key


def outcome(db: Database, r: Report, now: float, ip: str = HOME) -> Outcome:
    with db.session() as s:
        return register(s, r, ip, 30, now=now)


def macs_of(db: Database, node_id: str) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(NodeMac.mac).where(NodeMac.node_id == node_id)))


def node_count(db: Database) -> int:
    with db.session() as s:
        return len(list(s.scalars(select(Node.id))))


@pytest.mark.parametrize("uuid", [None, UUID_A])
def test_a_serial_less_node_rebooting_to_a_new_address_stays_one_node(
    db: Database, uuid: str | None
) -> None:
    """Review: a reboot 40 s later from another address (still online, node id lost with
    the agent's memory) made a second node with no UUID and no MACs."""
    first, _ = reg(db, report(uuid, None), 1000)
    told = outcome(db, report(uuid, None, uptime_s=5), 1040, ip=ELSEWHERE)  # booted at 1035
    # 90 s (3 heartbeats of 30 s) after its last report the node shows offline
    assert (told.node_id, told.created, told.retry_after_s) == ("", False, 51.0)
    assert told.reason and first not in told.reason  # the id is evidence: never told
    assert node_count(db) == 1 and node(db, first).last_ip == HOME
    kind = "uuid-conflict" if uuid else "mac-conflict"
    named = {"uuid": UUID_A} if uuid else {"mac": MAC}
    conflict = {**named, "owner": first, "claimed_by": None, "retry_after_s": 51}
    assert kinds(db, first) == [(kind, conflict)]
    again = outcome(db, report(uuid, None, uptime_s=56), 1091, ip=ELSEWHERE)  # as told
    assert (again.node_id, again.created, again.retry_after_s) == (first, False, 0.0)
    kept = node(db, first)
    assert (kept.system_uuid, kept.last_ip, kept.boots) == (uuid, ELSEWHERE, 2)
    assert macs_of(db, first) == [MAC] and node_count(db) == 1
    assert kinds(db, first) == [(kind, conflict)]  # the same node: nothing moved


def test_a_clone_of_an_online_node_becomes_a_node_of_its_own(db: Database) -> None:
    """The owner reported after the clone booted: two machines, nothing moved."""
    first, _ = reg(db, report(None, None), 1000)
    told = outcome(db, report(None, None, uptime_s=5), 1030, ip=ELSEWHERE)  # booted at 1025
    assert told.retry_after_s == 61.0 and not told.created  # it may be the node, rebooted
    with db.session() as s:  # ... but the node is alive
        beat = Report(**{**report(None, None).__dict__, "facts": None, "node_id": first})
        heartbeat(s, beat, HOME, 30, 3, now=1060)
    clone = outcome(db, report(None, None, uptime_s=67), 1092, ip=ELSEWHERE)
    assert clone.created and clone.node_id != first and clone.retry_after_s == 0
    assert macs_of(db, first) == [MAC] and macs_of(db, clone.node_id) == []
    assert [k for k, _ in kinds(db, first)] == ["mac-conflict", "mac-conflict"]
    assert [k for k, _ in kinds(db, clone.node_id)] == ["mac-conflict"]


@pytest.mark.parametrize(
    ("serial", "uptime"), [("FAKE-9", 5), (None, None)], ids=["other-real-serial", "no-uptime"]
)
def test_without_a_boot_after_the_owner_or_with_another_serial_it_is_a_new_node(
    db: Database, serial: str | None, uptime: int | None
) -> None:
    first, _ = reg(db, report(UUID_A, "REAL-1"), 1000)
    other = outcome(db, report(UUID_A, serial, uptime_s=uptime), 1030, ip=ELSEWHERE)
    assert other.created and other.node_id != first and other.retry_after_s == 0


def test_the_reboot_wait_is_bounded_and_its_event_budgeted(db: Database) -> None:
    assert reboot_wait(1000, 5, [(990, 90)]) == 81
    assert reboot_wait(1000, 5, [(900, 90)]) == 1  # offline any moment: at least 1 s
    assert reboot_wait(1000, 5, [(994, 90), (990, 10_000)]) == MAX_REBOOT_WAIT_S
    assert reboot_wait(1000, 5, [(994, 90), (996, 90)]) == 0  # one reported since
    first, _ = reg(db, report(None, None), 1000)
    silent = Guard(event_allowed=lambda subject, ip, kind: False)
    with db.session() as s:
        told = register(s, report(None, None, uptime_s=1), ELSEWHERE, 30, now=1010, guard=silent)
    assert told.retry_after_s == 81 and kinds(db, first) == []
