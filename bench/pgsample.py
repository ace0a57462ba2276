"""What PostgreSQL and the machine do while a benchmark phase runs, sampled in a thread:
the CPU of the server's processes (from /proc), what our backends wait on (from
pg_stat_activity) and how busy all cores are (/proc/stat, with the hypervisor's steal).

Why sampled, not read once before and after: a backend that ends mid-phase (a pool's
overflow connection) would take its CPU with it, and wait events exist only in the moment.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

SAMPLE_S = 0.25
WAITS = (
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
    "WHERE usename = current_user AND pid <> pg_backend_pid() "
    "AND backend_type = 'client backend'"
)


def _proc_cpu(pid: str) -> float:
    """User + system CPU of one process (not its children: the postmaster's children are
    the backends, sampled on their own)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_processes(role: str) -> dict[str, tuple[bool, float]]:
    """pid -> (a backend of `role`, CPU seconds) for every process named postgres; the
    process title ("postgres: 15/main: ROLE DB 127.0.0.1(port) idle") tells ours apart."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):  # ended meanwhile
            if Path(f"/proc/{entry.name}/comm").read_text().strip() != "postgres":
                continue
            title = Path(f"/proc/{entry.name}/cmdline").read_bytes().decode(errors="replace")
            found[entry.name] = (f": {role} " in title, _proc_cpu(entry.name))
    return found


def machine_ticks() -> list[int]:
    """/proc/stat's first line: user nice system idle iowait irq softirq steal."""
    return [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def busy_pct(seconds: float) -> float:
    """% of all cores busy (steal included) over the next `seconds`."""
    t0 = machine_ticks()
    time.sleep(seconds)
    ticks = [b - a for a, b in zip(t0, machine_ticks(), strict=True)]
    total = sum(ticks) or 1
    return 100 * (total - ticks[3] - ticks[4]) / total


def wait_for_quiet(limit_s: float, below_pct: float = 15.0) -> tuple[float, float]:
    """Wait (at most `limit_s`) until the machine is nearly idle, so another user's burst
    of work does not land in a phase; (seconds waited, % busy in the last second)."""
    start = time.monotonic()
    busy = busy_pct(1.0)
    while busy >= below_pct and time.monotonic() - start < limit_s:
        busy = busy_pct(1.0)
    return round(time.monotonic() - start, 1), round(busy, 1)


class PgSampler:
    """Started at a phase's start, `finish()` at its end. CPU `ours` is our role's
    backends (this sampler's own excluded), `all` every postgres process (with the WAL
    writer and checkpointer, and any other user's backends)."""

    def __init__(self, url: str) -> None:
        import psycopg
        from sqlalchemy import make_url

        self.role = make_url(url).username or ""
        self.conn = psycopg.connect(url, autocommit=True, connect_timeout=5)
        row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        self.own_pid = str(row[0]) if row else ""
        self.first = postgres_processes(self.role)
        self.last = dict(self.first)
        self.ticks0 = machine_ticks()
        self.samples = 0
        self.active = 0  # summed over samples: our backends running a statement
        self.idle_in_tx = 0  # ... holding a transaction open, waiting for a master
        self.waits = Counter[str]()  # what active backends waited on ("CPU": nothing)
        self.own_cpu_s = 0.0  # this thread's: taken off the load generator's CPU
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.wait(SAMPLE_S):
            self.last |= postgres_processes(self.role)
            self.samples += 1
            for state, kind, event in self.conn.execute(WAITS).fetchall():
                if state == "active":
                    self.active += 1
                    self.waits[f"{kind}:{event}" if kind else "CPU"] += 1
                elif state and state.startswith("idle in transaction"):
                    self.idle_in_tx += 1
            self.own_cpu_s = time.thread_time()

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        self.thread.join()
        self.last |= postgres_processes(self.role)
        self.conn.close()
        ours = every = 0.0
        for pid, (mine, cpu) in self.last.items():
            delta = max(0.0, cpu - self.first.get(pid, (mine, 0.0))[1])
            every += delta
            if mine and pid != self.own_pid:
                ours += delta
        ticks = [b - a for a, b in zip(self.ticks0, machine_ticks(), strict=True)]
        total = sum(ticks) or 1
        n = self.samples or 1
        return {
            "postgres_cpu_s": round(ours, 2),
            "postgres_all_cpu_s": round(every, 2),
            "pg_active_avg": round(self.active / n, 2),
            "pg_idle_in_tx_avg": round(self.idle_in_tx / n, 2),
            "pg_waits": dict(self.waits.most_common(5)),
            "sampler_cpu_s": round(self.own_cpu_s, 2),
            "machine_busy_pct": round(100 * (total - ticks[3] - ticks[4]) / total, 1),
            "machine_steal_pct": round(100 * ticks[7] / total, 1),
        }
