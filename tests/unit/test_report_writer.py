"""The report writer: batched transactions, one bad report never costs the others, a
lost insert race is retried, and the real inventory rules still hold (exactly once)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from livestrap.master.db import Database
from livestrap.master.inventory import Outcome, Report, heartbeat, register
from livestrap.master.models import BootEvent, Node
from livestrap.master.report_writer import ReportWriter

pytestmark = pytest.mark.unit


def report(mac: str = "aa:bb:cc:00:00:01", **kw: Any) -> Report:
    fields: dict[str, Any] = {
        "agent_version": "0.1.0",
        "image_id": "img",
        "boot_mac": mac,
        "node_id": None,
        "facts_hash": "h1",
        "facts": {"system": {"uuid": None}, "nics": [{"name": "eth0", "mac": mac}]},
        "failures": [],
        "uptime_s": 30,
    }
    fields.update(kw)
    return Report(**fields)


def inventory(session: Session, r: Report, ip: str | None) -> Outcome:
    if r.facts is None:
        return heartbeat(session, r, ip, 30, 3)
    return register(session, r, ip, 30)


async def submit_all(writer: ReportWriter, reports: list[Report]) -> list[Any]:
    jobs = [writer.submit(r, "10.0.0.1") for r in reports]
    return await asyncio.gather(*jobs, return_exceptions=True)


def test_reports_queued_together_share_one_transaction(db: Database) -> None:
    sessions: list[int] = []
    gate = threading.Event()

    def apply(session: Session, r: Report, ip: str | None) -> Outcome:
        gate.wait(5)  # the first report holds the writer until all are queued
        sessions.append(id(session))
        return Outcome(r.boot_mac or "", created=False, facts_required=False)

    writer = ReportWriter(db, apply)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(writer.submit(report("aa:bb:cc:00:00:00"), None))
        await asyncio.sleep(0.05)
        rest = [writer.submit(report(f"aa:bb:cc:00:00:0{i}"), None) for i in range(1, 6)]
        tasks = [asyncio.ensure_future(job) for job in rest]
        await asyncio.sleep(0.05)
        gate.set()
        return [await first, *[await t for t in tasks]]

    try:
        outcomes = asyncio.run(scenario())
    finally:
        writer.stop()
    assert [o.node_id for o in outcomes] == [f"aa:bb:cc:00:00:0{i}" for i in range(6)]
    assert len(set(sessions[1:])) == 1  # the five that waited went in one batch


def test_one_failing_report_does_not_fail_its_batch(db: Database) -> None:
    def apply(session: Session, r: Report, ip: str | None) -> Outcome:
        if r.boot_mac == "aa:bb:cc:00:00:02":
            raise ValueError("broken report")
        return inventory(session, r, ip)

    writer = ReportWriter(db, apply)
    macs = [f"aa:bb:cc:00:00:0{i}" for i in range(1, 5)]
    try:
        results = asyncio.run(submit_all(writer, [report(m) for m in macs]))
    finally:
        writer.stop()
    assert isinstance(results[1], ValueError)
    assert all(isinstance(r, Outcome) and r.created for i, r in enumerate(results) if i != 1)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Node)) == 3


def test_a_lost_insert_race_is_retried(db: Database) -> None:
    """Another master inserted the node first: the retry finds and updates it."""
    calls: list[str] = []

    def apply(session: Session, r: Report, ip: str | None) -> Outcome:
        calls.append(r.boot_mac or "")
        if len(calls) == 1:
            raise IntegrityError("INSERT", {}, Exception("UNIQUE constraint failed"))
        return inventory(session, r, ip)

    writer = ReportWriter(db, apply)
    try:
        (outcome,) = asyncio.run(submit_all(writer, [report()]))
    finally:
        writer.stop()
    assert isinstance(outcome, Outcome) and outcome.created
    assert len(calls) == 2


@pytest.mark.parametrize("writers", [1, 4])
def test_duplicate_first_reports_make_one_node_and_one_boot(db: Database, writers: int) -> None:
    """Several writers (as on PostgreSQL) race for the new node: still exactly one."""
    writer = ReportWriter(db, inventory, writers=writers)
    try:
        first = asyncio.run(submit_all(writer, [report(), report(), report("aa:bb:cc:00:00:09")]))
        node_id = first[0].node_id
        beat = report(facts=None, node_id=node_id)
        second = asyncio.run(submit_all(writer, [beat, report(facts=None, node_id="gone")]))
    finally:
        writer.stop()
    assert first[0].node_id == first[1].node_id != first[2].node_id
    assert [o.created for o in first] == [True, False, True]
    assert (second[0].node_id, second[0].facts_required) == (node_id, False)
    assert second[1].facts_required
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Node)) == 2
        reports = select(func.count()).select_from(BootEvent).where(BootEvent.kind == "report")
        assert s.scalar(reports) == 2


def test_stop_finishes_queued_reports_and_a_later_submit_restarts(db: Database) -> None:
    writer = ReportWriter(db, inventory)
    asyncio.run(submit_all(writer, [report()]))
    writer.stop()
    writer.stop()  # idempotent
    (again,) = asyncio.run(submit_all(writer, [report("aa:bb:cc:00:00:07")]))
    writer.stop()
    assert isinstance(again, Outcome) and again.created
