"""Discovery benchmark: K simulated agents register and then heartbeat against a real
master (SQLite, and PostgreSQL when reachable); then 10,000 online nodes heartbeat every
30 s with jitter for a bounded time. Every node must exist exactly once afterwards.

Writes the `discovery` part of bench/results.json and re-renders docs/benchmarks.md.
`.venv/bin/python bench/discovery_bench.py [--agents 1000,10000] [--steady-s 90]
[--postgres URL | --no-postgres | --only-postgres] [--smoke]`. Bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from discovery_agents import SimAgent, make_agents  # noqa: E402
from discovery_load import Client, Phase, burst, steady, timed  # noqa: E402
from discovery_report import goals, render  # noqa: E402, F401
from report import save_part  # noqa: E402
from tools import cpu_seconds  # noqa: E402

from masterproc import NO_LIMITS, Master, drop_pg_schemas, make_pg_schema, master_process  # noqa: E402

# make bench sets it (scripts/test-postgres.sh: a throwaway role owning one database)
DEFAULT_PG = os.environ.get("LIVESTRAP_TEST_POSTGRES")
BURST_MAX_S = 300.0
DUP_EVERY = 50  # every 50th agent sends its first report twice at once (a retry race)

__all__ = ["main", "render"]


def pg_reachable(url: str) -> str | None:
    """None if PostgreSQL answers at `url`, else why not."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=3):
            return None
    except psycopg.OperationalError as err:
        return str(err).strip().splitlines()[0]


@contextmanager
def pg_database(url: str, name: str) -> Iterator[str]:
    """A throwaway schema in the PostgreSQL database of `url` (the role needs no right to
    create databases); the master's URL."""
    made = make_pg_schema(url, name)
    try:
        yield made
    finally:
        drop_pg_schemas(url, [name])


async def register_all(client: Client, agents: list[SimAgent], concurrency: int) -> Phase:
    """First reports (with facts); a few agents send theirs twice concurrently."""
    split: list[int] = []

    async def step(agent: SimAgent, phase: Phase) -> bool:
        copies = 2 if agent.index % DUP_EVERY == DUP_EVERY - 1 else 1
        answers = await asyncio.gather(
            *(timed(client, agent.register_body, phase) for _ in range(copies))
        )
        ids = {json.loads(a[1])["node_id"] for a in answers if a and a[0] in (200, 201)}
        if len(ids) > 1:
            split.append(agent.index)
        if not ids:
            return False
        agent.node_id = ids.pop()
        return True

    phase = await burst("register", agents, step, concurrency, time.monotonic() + BURST_MAX_S)
    phase.extra["split_answers"] = len(split)
    return phase


async def heartbeat_all(client: Client, agents: list[SimAgent], concurrency: int) -> Phase:
    """One heartbeat per agent; it must be accepted without asking for facts again."""

    async def step(agent: SimAgent, phase: Phase) -> bool:
        answer = await timed(client, agent.heartbeat_body(40), phase)
        if answer is None or answer[0] != 200:
            return False
        if json.loads(answer[1])["facts_required"]:
            phase.errors["facts_required"] += 1
        return True

    return await burst("heartbeat", agents, step, concurrency, time.monotonic() + BURST_MAX_S)


def verify(master: Master, agents: list[SimAgent]) -> dict[str, Any]:
    """Every simulated node exactly once: one node per agent, owning the agent's MACs,
    one boot each, and no node that no agent made."""
    from sqlalchemy import func, select

    from livestrap.master.models import BootEvent, Node, NodeMac

    db = master.database()
    try:
        with db.session() as s:
            nodes = dict(s.execute(select(Node.id, Node.system_uuid)).all())
            owner = dict(s.execute(select(NodeMac.mac, NodeMac.node_id)).all())
            boots = Counter(str(b) for b in s.scalars(select(Node.boots)))
            reports = s.scalar(
                select(func.count()).select_from(BootEvent).where(BootEvent.kind == "report")
            )
    finally:
        db.dispose()
    answered = [a.node_id for a in agents if a.node_id]
    missing = [a.index for a in agents if a.node_id not in nodes]
    misowned = [a.index for a in agents if owner.get(a.boot_mac) != a.node_id]
    wrong_uuid = [
        a.index for a in agents if a.system_uuid and nodes.get(a.node_id or "") != a.system_uuid
    ]
    result = {
        "expected": len(agents),
        "nodes": len(nodes),
        "missing": len(missing),
        "duplicates": len(answered) - len(set(answered)) + max(0, len(nodes) - len(agents)),
        "mac_owner_wrong": len(misowned),
        "uuid_wrong": len(wrong_uuid),
        "boots": dict(boots),
        "report_events": reports,
    }
    result["exactly_once"] = len(nodes) == len(agents) == len(set(answered)) and not (
        missing or misowned or wrong_uuid
    )
    return result


def server_cpu(master: Master) -> dict[str, float]:
    """CPU seconds so far of the master and, on PostgreSQL, of the server processes
    serving its database (the master's pooled connections)."""
    out = {"master": cpu_seconds(master.proc.pid), "postgres": 0.0}
    if master.database_url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(master.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid()"
            ).fetchall()
        for (pid,) in rows:
            with contextlib.suppress(OSError):  # ended meanwhile
                out["postgres"] += cpu_seconds(pid)
    return out


def cpu_used(master: Master, before: dict[str, float], wall_s: float) -> dict[str, float]:
    after = server_cpu(master)
    used = after["master"] - before["master"]
    out = {"master_cpu_s": round(used, 2), "master_cpu_pct": round(100 * used / wall_s, 1)}
    if master.database_url.startswith("postgresql"):
        pg = max(0.0, after["postgres"] - before["postgres"])
        out |= {"postgres_cpu_s": round(pg, 2), "postgres_cpu_pct": round(100 * pg / wall_s, 1)}
    return out


def run_backend(
    backend: str, pg_admin: str | None, sizes: list[int], args: argparse.Namespace
) -> dict[str, Any]:
    """Each size against a fresh master and database; the steady state after the largest."""
    out: dict[str, Any] = {"runs": {}}
    for k in sizes:
        agents = make_agents(k, seed=k % 251)
        with ExitStack() as stack:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="livestrap-discbench-"))
            db_url = f"sqlite:///{tmp}/livestrap.db"
            if pg_admin:
                db_url = stack.enter_context(pg_database(pg_admin, f"livestrap_discbench_{k}"))
            m = stack.enter_context(
                master_process(
                    Path(tmp) / "data", database_url=db_url, heartbeat_s=30, env=NO_LIMITS
                )
            )
            run = asyncio.run(one_size(m, agents, args, steady_too=k == max(sizes)))
        out["runs"][str(k)] = run
        print(backend, k, json.dumps(run), flush=True)
    return out


async def one_size(
    m: Master, agents: list[SimAgent], args: argparse.Namespace, steady_too: bool
) -> dict[str, Any]:
    client = Client(int(m.url.rsplit(":", 1)[1]), m.discovery_token)
    run: dict[str, Any] = {"agents": len(agents), "concurrency": args.concurrency}
    for name, go in (("register", register_all), ("heartbeat", heartbeat_all)):
        cpu0 = server_cpu(m)
        phase = await go(client, agents, args.concurrency)
        run[name] = phase.summary() | cpu_used(m, cpu0, phase.wall_s)
    run["check"] = verify(m, agents)
    if steady_too and args.steady_s > 0:
        cpu0 = server_cpu(m)
        phase = await steady(client, agents, args.interval_s, args.steady_s)
        run["steady"] = phase.summary() | cpu_used(m, cpu0, phase.wall_s)
        run["steady"] |= {"nodes": len(agents), "interval_s": args.interval_s}
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", default="1000,10000", help="comma-separated K values")
    parser.add_argument("--steady-s", type=float, default=90.0, help="steady-state duration")
    parser.add_argument("--interval-s", type=float, default=30.0, help="heartbeat interval")
    parser.add_argument("--concurrency", type=int, default=64, help="reports in flight (bursts)")
    parser.add_argument(
        "--postgres", help="PostgreSQL URL (default: $LIVESTRAP_TEST_POSTGRES, as make bench sets)"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--only-postgres", action="store_true", help="skip SQLite")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.agents, args.steady_s, args.interval_s = "50", 4.0, 2.0
    sizes = sorted(int(k) for k in args.agents.split(","))
    part: dict[str, Any] = {"smoke": args.smoke, "backends": {}}
    if not args.only_postgres:
        part["backends"]["sqlite"] = run_backend("sqlite", None, sizes, args)
    pg_url = None if args.no_postgres else (args.postgres or DEFAULT_PG)
    why = pg_reachable(pg_url) if pg_url else "no --postgres or LIVESTRAP_TEST_POSTGRES"
    if args.no_postgres:
        why = "disabled (--no-postgres)"
    if pg_url and why is None:
        part["backends"]["postgresql"] = run_backend("postgresql", pg_url, sizes, args)
    else:
        print(f"PostgreSQL not measured: {why}; SQLite only", flush=True)
        part["postgres_skipped"] = why
    save_part("discovery", part)


if __name__ == "__main__":
    main()
