"""Stateless masters (issue 18): three real master processes on one PostgreSQL schema and
one data dir (a shared `images/` filesystem), started at once. A build queued on one is
built once, by one of the three workers, and then served by all; 10,000 simulated agents
register through all three (every 50th sending its first report to two at once) while one
master is SIGKILLed, and the node actions heartbeats carry are delivered once each and
never left stuck. PostgreSQL only: SQLite is one master by design."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from test_builds import SETTINGS, prepare_data, submit, ts, wait_for

from fleet import machine_facts, report_body
from livestrap.master.buildslot import BUILD_SLOT_KEY
from livestrap.master.models import Node, NodeAction, NodeMac
from livestrap.master.services.actions import HANDOVER_GRACE_S, queue_many
from masterproc import (
    NO_LIMITS,
    PG_ADMIN_URL,
    Master,
    drop_pg_schemas,
    make_pg_schema,
    master_process,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from discovery_load import Client

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not PG_ADMIN_URL,
        reason="several masters need PostgreSQL (scripts/test-postgres.sh sets one up)",
    ),
]

MASTERS = 3
# 1,000 in the suite (~60 s on 2 cores); MM_AGENTS=10000 for the full storm, which
# took ~230 s here at ~43 registrations/s with three masters sharing the two cores.
AGENTS = int(os.environ.get("MM_AGENTS", "1000"))
TWICE_EVERY = 50  # this agent's first report goes to two masters at once
IN_FLIGHT = 48
KILL_AT = AGENTS // 2  # registrations answered when one master is SIGKILLed
ACTION_NODES = 200  # each gets two actions queued before the kill
LOST_WITH_MASTER = 20  # of them: the answer carrying their action dies with the master
STORM_LIMIT_S = 60.0 + AGENTS / 15  # 1,000: 127 s; 10,000: 727 s
SLOT_HOLDER = (  # the backend holding this schema's build slot (master.buildslot)
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
    " AND classid = CAST(:k AS integer)::oid AND objid = hashtext(current_schema())::oid"
)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Master]]:
    """Three masters (role "all": three build workers), started at the same moment on an
    empty schema: they migrate one after another and share one pair of tokens."""
    assert PG_ADMIN_URL
    schema = f"livestrap_test_multi_{uuid.uuid4().hex[:10]}"
    url = make_pg_schema(PG_ADMIN_URL, schema)
    data = prepare_data(tmp_path_factory.mktemp("multi") / "data")
    try:
        with contextlib.ExitStack() as stack, ThreadPoolExecutor(MASTERS) as pool:
            procs = [master_process(data, database_url=url, env=NO_LIMITS) for _ in range(MASTERS)]
            entered = [pool.submit(stack.enter_context, proc) for proc in procs]  # each starts
            yield [f.result() for f in entered]
    finally:
        drop_pg_schemas(PG_ADMIN_URL, [schema])


def test_started_at_once_they_share_one_schema_and_one_token(cluster: list[Master]) -> None:
    for master in cluster:
        with master.admin() as c:
            assert c.get("/api/v1/settings").status_code == 200  # the one admin token
    with cluster[0].admin() as c:
        c.put("/api/v1/settings", json=SETTINGS).raise_for_status()
    with cluster[2].admin() as c:  # settings live in the database: every master has them
        assert c.get("/api/v1/settings").json()["label"] == SETTINGS["label"]


def test_a_build_queued_on_one_master_is_built_once_and_served_by_all(
    cluster: list[Master],
) -> None:
    a = cluster[0]
    with ThreadPoolExecutor(MASTERS) as pool:  # queued at once through all three
        clients = [m.admin() for m in cluster]
        queued = list(pool.map(lambda c: submit(c, activate=True), clients * 2))
    assert len({b["seq"] for b in queued}) == len(queued)  # seq is unique cluster-wide
    with a.admin() as c:
        builds = sorted((wait_for(c, b["id"], timeout=60) for b in queued), key=lambda b: b["seq"])
    assert [b["state"] for b in builds] == ["succeeded"] * len(queued)
    for build in builds:  # each ran once: one pipeline in its log
        text = (a.data_dir / "logs" / f"build-{build['id']}.log").read_text()
        assert text.count("=== stage prepare") == 1, text
    for before, after in itertools.pairwise(builds):  # one at a time across three workers
        assert before["finished"] <= after["started"], (before, after)
    for c in clients:
        c.close()
    image_id = builds[-1]["image_id"]
    for master in cluster:  # listed, active and servable from every master
        with master.admin() as c:
            listed = {i["id"]: i for i in c.get("/api/v1/images").json()}
            assert listed[image_id]["active"], listed
            meta = c.get(f"/api/v1/images/{image_id}").json()
        with master.anonymous() as c:
            assert image_id in c.get("/boot/ipxe").text
            kernel = c.get(f"/boot/images/{image_id}/vmlinuz")
        assert kernel.status_code == 200, kernel.text
        assert hashlib.sha256(kernel.content).hexdigest() == _sha256_of(meta, "vmlinuz")


def _sha256_of(meta: dict[str, Any], name: str) -> str:
    found: str = meta["artifacts"][name]["sha256"]
    return found


# -- the storm -----------------------------------------------------------------------------


@dataclass
class Sim:
    """One simulated agent: its first report, its node id, the actions it got."""

    n: int
    mac: str
    first: bytes
    hash: str
    node_id: str | None = None
    holding: list[str] = field(default_factory=list)  # actions run, result not yet taken

    def heartbeat(self) -> bytes:
        body = report_body(None, self.mac, self.node_id)
        body.update(facts_hash=self.hash, open_actions=self.holding)
        return json.dumps(body).encode()


def make_sims(count: int) -> list[Sim]:
    sims = []
    for n in range(count):
        facts = machine_facts(n)
        body = report_body(facts, facts["nics"][0]["mac"])
        sims.append(Sim(n, body["boot_mac"], json.dumps(body).encode(), body["facts_hash"]))
    return sims


class Storm:
    """Reports over the masters, with retries on the next one when a master fails."""

    def __init__(self, masters: list[Master]) -> None:
        self.masters = masters
        token = masters[0].discovery_token
        self.clients = [Client(int(m.url.rsplit(":", 1)[1]), token) for m in masters]
        self.dead: set[int] = set()
        self.retries = Counter[str]()
        self.delivered = Counter[str]()  # action id -> answers that carried it
        self.registered = 0

    async def post(self, first: int, body: bytes) -> dict[str, Any]:
        """The answer of the first master from `first` on that takes the report. Like a real
        agent, it is not told which master died: it finds out when the connection fails."""
        deadline = time.monotonic() + 60
        for i in itertools.count(first):
            k = i % len(self.masters)
            try:
                status, raw = await self.clients[k].post(body)
            except (OSError, TimeoutError) as err:  # refused, reset: that master is gone
                self.retries[type(err).__name__] += 1
            else:
                if status in (200, 201):
                    answer: dict[str, Any] = json.loads(raw)
                    return answer
                self.retries[str(status)] += 1
            assert time.monotonic() < deadline, f"report not taken: {self.retries}"
            await asyncio.sleep(0.05)
        raise AssertionError("unreachable")

    async def register(self, sim: Sim) -> None:
        k = sim.n % len(self.masters)
        if sim.n % TWICE_EVERY == 0:  # the same first report to two masters at once
            one, two = await asyncio.gather(self.post(k, sim.first), self.post(k + 1, sim.first))
            assert one["node_id"] == two["node_id"], (one, two)
            sim.node_id = one["node_id"]
        else:
            sim.node_id = (await self.post(k, sim.first))["node_id"]
        self.registered += 1

    async def beat(self, sim: Sim, k: int) -> list[str]:
        """One heartbeat through master k (or the next live one); the agent runs what it
        carries and reports each result (to any live master) until one takes it."""
        orders = (await self.post(k, sim.heartbeat())).get("actions") or []
        for order in orders:
            self.delivered[order["id"]] += 1
            sim.holding.append(order["id"])
        for action_id in list(sim.holding):
            await self.result(sim, action_id, k + 1)
        return [o["id"] for o in orders]

    async def result(self, sim: Sim, action_id: str, k: int) -> None:
        result = {"node_id": sim.node_id, "status": "succeeded", "exit_code": 0,
                  "output_tail": "ok\n", "took_s": 0.1, "error": None}  # fmt: skip
        body = json.dumps(result).encode()
        for i in itertools.count(k):
            m = i % len(self.masters)
            url = f"{self.masters[m].url}/api/v1/discovery/actions/{action_id}/result"
            headers = {"Authorization": f"Bearer {self.masters[m].discovery_token}",
                       "Content-Type": "application/json"}  # fmt: skip
            try:
                async with httpx.AsyncClient(timeout=30) as c:
                    resp = await c.post(url, content=body, headers=headers)
            except httpx.TransportError:
                continue
            assert resp.status_code in (200, 201, 409), resp.text  # 409: lost meanwhile
            sim.holding.remove(action_id)
            return

    def kill(self, k: int) -> None:
        self.dead.add(k)
        os.kill(self.masters[k].proc.pid, signal.SIGKILL)
        self.masters[k].proc.wait()


async def run_all(jobs: Any, limit: int) -> None:
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> None:
        async with gate:
            await job

    await asyncio.gather(*(one(j) for j in jobs))


def queue_actions(master: Master, node_ids: list[str]) -> None:
    db = master.database()
    try:
        with db.session() as session:
            for _ in range(2):
                queue_many(session, node_ids, "reinspect", {}, requested_by="test")
    finally:
        db.dispose()


async def storm(cluster: list[Master], sims: list[Sim]) -> tuple[Storm, float, list[str]]:
    """Register everyone; SIGKILL master 2 halfway, after answers carrying the actions of
    LOST_WITH_MASTER nodes were lost with it; heartbeats go on through all masters."""
    s = Storm(cluster)
    action_sims = sims[:ACTION_NODES]
    await run_all((s.register(x) for x in action_sims), IN_FLIGHT)
    queue_actions(cluster[0], [x.node_id for x in action_sims if x.node_id])
    victims = action_sims[:LOST_WITH_MASTER]
    lost_answers = []
    for sim in victims:  # answered by master 2, which dies before the answer is sent
        orders = (await s.post(2, sim.heartbeat())).get("actions") or []
        lost_answers += [o["id"] for o in orders]
    start = time.monotonic()
    stop_beating = asyncio.Event()

    async def heartbeats() -> None:
        for k in itertools.count():
            if stop_beating.is_set():
                return
            beating = action_sims if s.dead else action_sims[LOST_WITH_MASTER:]
            await run_all((s.beat(x, k + x.n) for x in beating), 16)
            await asyncio.sleep(1.0)

    async def killer() -> None:
        while s.registered < KILL_AT:
            await asyncio.sleep(0.05)
        s.kill(2)

    async def progress() -> None:
        while True:
            await asyncio.sleep(10)
            seen = f"{s.registered} registered, {len(s.delivered)} delivered"
            print(f"{time.monotonic() - start:.0f} s: {seen}, retries {dict(s.retries)}")

    showing = asyncio.create_task(progress())

    beating = asyncio.create_task(heartbeats())
    killing = asyncio.create_task(killer())
    await run_all((s.register(x) for x in sims[ACTION_NODES:]), IN_FLIGHT)
    took = time.monotonic() - start
    await killing
    # past the handover grace, the victims' next heartbeats end the lost action and
    # deliver their second one: beat until no action is open (bounded by the timeout)
    deadline = time.monotonic() + HANDOVER_GRACE_S + 30
    while time.monotonic() < deadline and open_actions(cluster[0]):
        await asyncio.sleep(0.5)
    stop_beating.set()
    showing.cancel()
    await beating
    return s, took, lost_answers


def open_actions(master: Master) -> int:
    db = master.database()
    try:
        with db.session() as session:
            query = select(func.count()).where(NodeAction.state.in_(("queued", "delivered")))
            return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
    finally:
        db.dispose()


def test_ten_thousand_agents_over_three_masters_one_killed(cluster: list[Master]) -> None:
    sims = make_sims(AGENTS)
    began = time.monotonic()
    s, took, lost_answers = asyncio.run(asyncio.wait_for(storm(cluster, sims), STORM_LIMIT_S))
    print(f"\n{AGENTS} registrations over {MASTERS} masters (one SIGKILLed at {KILL_AT}): "
          f"{took:.1f} s, {(AGENTS - ACTION_NODES) / took:.0f}/s; retries {dict(s.retries)}; "
          f"whole storm {time.monotonic() - began:.1f} s")  # fmt: skip
    assert cluster[2].proc.returncode == -signal.SIGKILL
    assert s.dead == {2}
    assert sum(s.retries.values()) > 0  # its agents were refused and went elsewhere

    db = cluster[0].database()
    try:
        with db.session() as session:
            nodes = session.scalar(select(func.count()).select_from(Node))
            macs = session.scalar(select(func.count()).select_from(NodeMac))
            owners = session.scalar(select(func.count(func.distinct(NodeMac.node_id))))
            actions = session.execute(select(NodeAction.id, NodeAction.state, NodeAction.node_id))
            states = {a.id: (a.state, a.node_id) for a in actions}
    finally:
        db.dispose()
    assert (nodes, macs, owners) == (AGENTS, 2 * AGENTS, AGENTS)  # 0 lost, 0 duplicated
    assert len({x.node_id for x in sims}) == AGENTS

    assert len(states) == 2 * ACTION_NODES
    assert max(s.delivered.values()) == 1  # no action was handed out twice
    tally = Counter(state for state, _ in states.values())
    assert set(tally) <= {"succeeded", "lost"}, tally  # nothing stuck queued or delivered
    lost = {i for i, (state, _) in states.items() if state == "lost"}
    assert set(lost_answers) <= lost  # their answers died with master 2: swept as lost
    assert len(lost_answers) == LOST_WITH_MASTER
    assert not lost & set(s.delivered)  # a lost one was never run, nor handed out again
    assert tally["succeeded"] == len(s.delivered) == 2 * ACTION_NODES - len(lost)


def test_a_new_admin_token_is_taken_by_every_live_master_without_a_restart(
    cluster: list[Master],
) -> None:
    live = [m for m in cluster if m.proc.poll() is None]
    old = live[0].admin_token
    path = live[0].data_dir / "admin.token"
    aside = path.with_name(".admin.token.new")
    aside.write_text(uuid.uuid4().hex * 2 + "\n")
    aside.chmod(0o600)
    os.replace(aside, path)  # the rotation: moved into place on the shared data dir
    deadline = time.monotonic() + 20  # the upkeep reads it within a few seconds
    for master in live:
        with master.admin() as c:
            while c.get("/api/v1/settings").status_code == 401:
                assert time.monotonic() < deadline, f"{master.url} kept the old token"
                time.sleep(0.2)
        old_answer = httpx.get(
            f"{master.url}/api/v1/settings", headers={"Authorization": f"Bearer {old}"}
        )
        assert old_answer.status_code == 401


def test_a_build_whose_master_loses_the_slot_stops_and_the_next_runs_once(
    cluster: list[Master],
) -> None:
    """The build slot is a PostgreSQL session's advisory lock: when that session ends (a
    database restart; here its backend is terminated) another master may claim the queue.
    The build stops, and the next one starts only once it has let go of the data dir."""
    live = [m for m in cluster if m.proc.poll() is None]
    with live[0].admin() as c:
        slow = submit(c, overrides={"packages": ["slow-me"]})["id"]
        after = submit(c)["id"]
        wait_for(c, slow, {"running"}, timeout=30)
    db = live[0].database()
    try:
        with db.session() as session:
            holder = session.scalars(text(SLOT_HOLDER), {"k": BUILD_SLOT_KEY}).all()
            assert len(holder) == 1, holder
            session.execute(text("SELECT pg_terminate_backend(:p)"), {"p": holder[0]})
    finally:
        db.dispose()
    with live[0].admin() as c:
        lost = wait_for(c, slow, timeout=30)
        then = wait_for(c, after, timeout=60)
    logs = live[0].data_dir / "logs"
    assert lost["state"] == "interrupted"  # by its own worker: the others waited for it
    assert lost["error"].startswith("the master lost the build slot"), lost
    lost_log = logs / f"build-{slow}.log"
    assert "=== build interrupted: the master lost the build slot" in lost_log.read_text()
    assert then["state"] == "succeeded"  # claimed once the stopped build let go of the lock
    assert ts(then["started"]) >= lost_log.stat().st_mtime - 0.05  # (file times: coarse)
    assert (logs / f"build-{after}.log").read_text().count("=== stage prepare") == 1
