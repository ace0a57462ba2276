"""Heartbeat cost with the node-action check: the report writer's apply() on SQLite with
10,000 online nodes (a tenth with finished actions behind them), each heartbeat in its own
transaction (commit included), the heartbeat alone against heartbeat + claim.

`.venv/bin/python bench/action_heartbeat_bench.py [--nodes 10000] [--beats 1000]`: prints
p50/p99 in ms of both. Bounded: a few seconds of work. Nothing is written outside a
temporary directory.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.orm import Session

from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.inventory import Outcome, Report, heartbeat, report_applier
from livestrap.master.models import Node, NodeAction

Apply = Callable[[Session, Report, str | None], Outcome]


def fill(db: Database, nodes: int, now: float) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(nodes)]
    rows = [{"id": i, "facts": {}, "failures": [], "heartbeat_s": 30, "first_seen_at": now,
             "last_seen_at": now, "boots": 1, "facts_hash": "h"} for i in ids]  # fmt: skip
    done = [{"id": str(uuid.uuid4()), "node_id": i, "seq": s, "kind": "reinspect", "args": {},
             "state": "succeeded", "requested_by": "bench", "created_at": now}
            for i in ids[: nodes // 10] for s in (1, 2, 3)]  # fmt: skip
    with db.session() as session:
        session.execute(insert(Node), rows)
        session.execute(insert(NodeAction), done)
    return ids


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49] * 1000, cuts[98] * 1000


def timed(db: Database, ids: list[str], beats: int,
          applies: dict[str, Apply]) -> dict[str, list[float]]:  # fmt: skip
    """Each node's heartbeat through every `apply` in turn, so that the noise of a shared
    machine falls on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in applies}
    for node_id in random.sample(ids, beats):
        report = Report(agent_version="1", image_id=None, boot_mac=None, node_id=node_id,
                        facts_hash="h", facts=None, failures=[], uptime_s=60)  # fmt: skip
        for name, apply in applies.items():
            start = time.perf_counter()
            with db.session() as session:
                apply(session, report, "10.0.0.1")
            samples[name].append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--beats", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MasterSettings(data_dir=Path(tmp))
        db = Database(cfg.db_url)
        migrate(db.engine)
        ids = fill(db, args.nodes, time.time())

        def alone(session: Session, report: Report, ip: str | None) -> Outcome:
            return heartbeat(session, report, ip, cfg.heartbeat_s, cfg.offline_after)

        applies = {"heartbeat alone": alone, "heartbeat + action check": report_applier(cfg)}
        timed(db, ids, 100, applies)  # warm the caches and the statement cache
        results = timed(db, ids, args.beats, applies)
        db.dispose()
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        print(f"{name:26} p50 {p50:.3f} ms  p99 {p99:.3f} ms  ({len(samples)} heartbeats)")


if __name__ == "__main__":
    main()
