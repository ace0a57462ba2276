"""Node identity, the new-boot rule and status: pure functions, then the rules on SQLite."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from livestrap.master.db import Database
from livestrap.master.inventory import (
    Report,
    heartbeat,
    identity_macs,
    is_new_boot,
    online_cutoff,
    register,
    sane_uuid,
    status_of,
    timeline,
)
from livestrap.master.models import BootEvent, Node, NodeMac

pytestmark = pytest.mark.unit

UUID = "4c4c4544-0042-3510-8052-b2c04f4d4e31"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (UUID.upper(), UUID),
        (f" {{{UUID}}} ", UUID),
        ("00000000-0000-0000-0000-000000000000", None),
        ("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", None),
        ("03000200-0400-0500-0006-000700080009", None),
        ("00020003-0004-0005-0006-000700080009", None),
        ("11111111-1111-1111-1111-111111111111", None),
        ("not-a-uuid", None),
        ("", None),
        (None, None),
        (42, None),
    ],
)
def test_sane_uuid(value: object, expected: str | None) -> None:
    assert sane_uuid(value) == expected


def test_identity_macs_normalizes_and_skips_junk() -> None:
    facts = {
        "nics": [
            {"name": "eno1", "mac": "AA:BB:CC:00:00:01"},
            {"name": "eno2", "mac": "aa-bb-cc-00-00-02"},
            {"name": "bad", "mac": "zz"},
            {"name": "none", "mac": None},
            {"name": "zero", "mac": "00:00:00:00:00:00"},
            "not a nic",
        ]
    }
    macs = identity_macs(facts, "aa:bb:cc:00:00:09")
    assert macs == {"aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02", "aa:bb:cc:00:00:09"}
    assert identity_macs({"nics": "broken"}, None) == set()
    assert identity_macs(None, None) == set()


def test_new_boot_rule() -> None:
    last = (1000.0, 1000.0 - 60)  # reported at t=1000 with uptime 60: booted at 940
    assert is_new_boot(2000.0, 5, None)  # no report yet
    assert not is_new_boot(1010.0, 70, last)  # same boot, 10 s later
    assert not is_new_boot(1010.0, 65, last)  # rounding / latency within the slack
    assert not is_new_boot(1005.0, 1, (1000.0, 1000.0))  # agent restart within seconds
    assert is_new_boot(1100.0, 30, last)  # uptime went back: rebooted
    assert is_new_boot(90000.0, 500, last)  # long silence, uptime below the gap
    # Days later the same boot: drift slack grows with the time since the last report.
    assert not is_new_boot(1000.0 + 86400, 60 + 86400 - 20, last)


def test_status() -> None:
    cutoff = online_cutoff(100.0, heartbeat_s=10, offline_after=3)
    assert cutoff == 70.0
    assert status_of(70.0, cutoff) == "online"
    assert status_of(69.9, cutoff) == "offline"


def report(
    *, uuid: str | None = UUID, macs: tuple[str, ...] = ("aa:bb:cc:00:00:01",), **kw: Any
) -> Report:
    facts = {
        "system": {"uuid": uuid, "vendor": "Dell"},
        "nics": [{"name": f"eth{i}", "mac": m} for i, m in enumerate(macs)],
    }
    fields: dict[str, Any] = {
        "agent_version": "0.1.0",
        "image_id": "img",
        "boot_mac": macs[0] if macs else None,
        "node_id": None,
        "facts_hash": "h1",
        "facts": facts,
        "failures": [],
        "uptime_s": 60,
    }
    fields.update(kw)
    return Report(**fields)


def reg(db: Database, r: Report, now: float, ip: str = "10.0.0.1") -> tuple[str, bool]:
    with db.session() as s:
        out = register(s, r, ip, 30, now=now)
    return out.node_id, out.created


def count(db: Database, what: Any) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(what)) or 0)


def test_same_uuid_is_the_same_node_even_with_new_nics(db: Database) -> None:
    a, created = reg(db, report(), 1000)
    # 1100: offline (a NIC swap takes a power-off); online, the UUID alone would not do
    b, again = reg(db, report(macs=("aa:bb:cc:00:00:77",)), 1100, ip="10.0.0.2")
    assert (created, again) == (True, False)
    assert a == b
    with db.session() as s:
        node = s.get(Node, a)
        assert node is not None
        assert node.last_ip == "10.0.0.2"
    assert count(db, NodeMac) == 2


def test_macs_identify_a_node_without_a_sane_uuid(db: Database) -> None:
    a, _ = reg(db, report(uuid=None, macs=("aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02")), 1000)
    zero = "00000000-0000-0000-0000-000000000000"
    b, created = reg(db, report(uuid=zero, macs=("aa:bb:cc:00:00:02",)), 1010)
    assert (a, created) == (b, False)
    c, created = reg(db, report(uuid=None, macs=("aa:bb:cc:00:00:03",)), 1020)
    assert created and c != a


def test_a_nic_moved_to_another_machine_goes_with_it(db: Database) -> None:
    a, _ = reg(db, report(macs=("aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02")), 1000)
    other = "4c4c4544-0042-3510-8052-b2c04f4d4e99"
    # 1100: the old box is offline (no news for 3 heartbeats of 30 s), so the NIC may move
    b, created = reg(db, report(uuid=other, macs=("aa:bb:cc:00:00:02",)), 1100)
    assert created and a != b
    with db.session() as s:
        assert s.get(NodeMac, "aa:bb:cc:00:00:02").node_id == b  # type: ignore[union-attr]


def test_a_late_sane_uuid_is_adopted(db: Database) -> None:
    a, _ = reg(db, report(uuid=None), 1000)
    b, created = reg(db, report(), 1010)
    assert (a, created) == (b, False)
    with db.session() as s:
        assert s.get(Node, a).system_uuid == UUID  # type: ignore[union-attr]


def test_boots_and_report_events(db: Database) -> None:
    a, _ = reg(db, report(uptime_s=60), 1000)
    reg(db, report(uptime_s=70, facts_hash="h2"), 1010)  # facts changed, same boot
    reg(db, report(uptime_s=20), 1300)  # rebooted
    with db.session() as s:
        node = s.get(Node, a)
        assert node is not None
        assert node.boots == 2
        events = timeline(s, a, ["aa:bb:cc:00:00:01"])
        assert [(e.kind, e.detail["boot"]) for e in events] == [("report", 1), ("report", 2)]


def test_heartbeat(db: Database) -> None:
    a, _ = reg(db, report(), 1000)
    with db.session() as s:
        hb = heartbeat(s, report(facts=None, node_id=a), "10.0.0.9", 30, 3, now=1030)
        assert (hb.node_id, hb.created, hb.facts_required) == (a, False, False)
        stale = heartbeat(s, report(facts=None, node_id=a, facts_hash="h9"), None, 30, 3, now=1031)
        assert stale.facts_required
        gone = heartbeat(s, report(facts=None, node_id="deleted"), None, 30, 3, now=1032)
        assert (gone.node_id, gone.facts_required) == ("deleted", True)
        anon = heartbeat(s, report(facts=None), None, 30, 3, now=1033)
        assert (anon.node_id, anon.facts_required) == ("", True)
    with db.session() as s:
        heartbeat(s, report(facts=None, node_id=a), "10.0.0.9", 30, 3, now=2000)  # after silence
    with db.session() as s:
        kinds = [e.kind for e in timeline(s, a, [])]
        assert kinds == ["report", "heartbeat-resumed"]
        assert s.get(Node, a).last_seen_at == 2000  # type: ignore[union-attr]


def test_timeline_takes_unattached_events_of_its_macs(db: Database) -> None:
    from livestrap.master.events import record_event

    with db.session() as s:
        record_event(s, "script", mac="AA-BB-CC-00-00-01", ip="10.0.0.1", at=990)
        record_event(s, "script", mac="aa:bb:cc:00:00:55", ip="10.0.0.5", at=991)
    a, _ = reg(db, report(), 1000)
    with db.session() as s:
        events = timeline(s, a, ["aa:bb:cc:00:00:01"])
        assert [(e.kind, e.at) for e in events] == [("script", 990), ("report", 1000)]
    assert count(db, BootEvent) == 3
