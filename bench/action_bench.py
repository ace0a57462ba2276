"""Node actions: (1) the heartbeat's cost with the action check, the report writer's
apply() on SQLite with 10,000 online nodes (a tenth with finished actions behind them),
each heartbeat in its own transaction (commit included), the heartbeat alone and
heartbeat + claim paired, one after the other for each node; (2) unless --no-vm, the time
from `livestrap nodes install NODE livestrap-agent` to the node reporting the new
agent_version, on a QEMU node (the e2e story test, which records its timings).

`.venv/bin/python bench/action_bench.py [--nodes 10000] [--beats 1000] [--no-vm] [--smoke]`
(`--vm-timings FILE`: what a story run with LIVESTRAP_ACTION_TIMINGS=FILE recorded)
writes the "actions" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent))
from report import ROOT, machine_line, save_part

from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.inventory import Outcome, Report, heartbeat, report_applier
from livestrap.master.models import Node, NodeAction

COMMAND = ".venv/bin/python bench/action_bench.py"
STORY = (
    "tests/e2e/test_pxe_boot.py::test_one_node_through_an_outage_a_wrong_token_actions_and_a_reboot"
)
GOAL_MS = 100.0

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


def heartbeat_cost(nodes: int, beats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        cfg = MasterSettings(data_dir=Path(tmp))
        db = Database(cfg.db_url)
        migrate(db.engine)
        ids = fill(db, nodes, time.time())

        def alone(session: Session, report: Report, ip: str | None) -> Outcome:
            return heartbeat(session, report, ip, cfg.heartbeat_s, cfg.offline_after)

        applies = {"alone": alone, "with_check": report_applier(cfg)}
        timed(db, ids, min(100, beats), applies)  # warm the caches and the statement cache
        results = timed(db, ids, beats, applies)
        db.dispose()
    part: dict[str, Any] = {"nodes": nodes, "beats": beats}
    for name, samples in results.items():
        p50, p99 = percentiles(samples)
        part[name] = {"p50_ms": round(p50, 3), "p99_ms": round(p99, 3)}
    return part


def vm_timings() -> dict[str, Any]:
    """Run the e2e story (it builds or reuses the session image, boots one TCG node) and
    read the timings it records."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "timings.json"
        env = {**os.environ, "LIVESTRAP_ACTION_TIMINGS": str(out)}
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", STORY]
        subprocess.run(argv, cwd=ROOT, env=env, check=True, timeout=3600)
        timings: dict[str, Any] = json.loads(out.read_text())
        return timings


def render(part: dict[str, Any]) -> list[str]:
    cost = part["heartbeat"]
    out = [
        "## Node actions",
        "",
        machine_line(part.get("machine")),
        f"Reproduce: `{COMMAND}`.",
        "",
    ]
    if part.get("smoke"):
        out += ["*Smoke run (tiny sizes): the figures say nothing about speed.*", ""]
    out += [
        f"The heartbeat with the action check: {cost['nodes']:,} online nodes in SQLite (a",
        "tenth with finished actions behind them), each heartbeat one transaction through the",
        "report writer's apply(), the heartbeat alone and with the check paired node by node",
        f"({cost['beats']} each):",
        "",
        "| heartbeat | p50 | p99 |",
        "|---|---|---|",
        f"| alone | {cost['alone']['p50_ms']} ms | {cost['alone']['p99_ms']} ms |",
        f"| with the action check | {cost['with_check']['p50_ms']} ms "
        f"| {cost['with_check']['p99_ms']} ms |",
        "",
        "The Discovery section's steady state (the whole request under load, 10,000 nodes)",
        "was measured before the check existed; the check adds the difference above to each",
        "heartbeat's transaction.",
        "",
    ]
    vm = part.get("vm")
    if vm:
        out += [
            f"On a QEMU node ({vm.get('accel', 'tcg').upper()}, heartbeat every "
            f"{vm['heartbeat_s']} s), from `livestrap nodes install NODE livestrap-agent`",
            f"to the node reporting the new `agent_version`: **{vm['install_to_version_s']} s**",
            "(the next heartbeat takes the action; apt-get update and install from the",
            "master's repository alone; the agent exits, systemd starts the new one, which",
            f"registers again). A re-inspection took {vm['reinspect_s']} s; an install of a",
            f"package the repository lacks failed in {vm['missing_s']} s.",
            "",
        ]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--beats", type=int, default=1000)
    parser.add_argument("--no-vm", action="store_true", help="skip the install on a QEMU node")
    recorded = "an e2e story run's timings (LIVESTRAP_ACTION_TIMINGS=FILE), no boot here"
    parser.add_argument("--vm-timings", type=Path, help=recorded)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.nodes, args.beats, args.no_vm = 200, 50, True
    part: dict[str, Any] = {"heartbeat": heartbeat_cost(args.nodes, args.beats),
                            "smoke": args.smoke}  # fmt: skip
    if args.vm_timings:
        part["vm"] = json.loads(args.vm_timings.read_text())
    elif not args.no_vm:
        part["vm"] = vm_timings()
    save_part("actions", part)
    for name in ("alone", "with_check"):
        figures = part["heartbeat"][name]
        print(f"heartbeat {name:10} p50 {figures['p50_ms']} ms  p99 {figures['p99_ms']} ms")


if __name__ == "__main__":
    main()
