"""The `## Discovery` section of docs/benchmarks.md, from the `discovery` results part."""

from __future__ import annotations

from typing import Any

from report import Goal, machine_line

GOAL_REGISTER_S = 60.0
GOAL_STEADY_P99_MS = 100.0
COMMAND = ".venv/bin/python bench/discovery_bench.py"

# What profiling (py-spy on the master under this load) found, and what was done.
FINDINGS = [
    "Before: each report ran in its own worker thread and transaction. On SQLite dozens "
    "of threads queued for the one write lock (the busy handler sleeps in steps of up to "
    "100 ms) and for the GIL, 40 threads shared a 15-connection pool (connections were "
    "opened and closed under load), a trivial sync dependency (`get_state`) cost one more "
    "thread hop per request, and HTTP went through pure-Python h11 and asyncio. Master "
    "CPU per report: ~3.9 ms to register, ~2.0 ms per heartbeat; the steady state's p99 "
    "was in the seconds whenever the machine was busy.",
    "Now: the event loop parses and validates; one writer thread (four on PostgreSQL) "
    "applies whatever reports have queued meanwhile in one transaction "
    "(`master/report_writer.py`: one commit per batch; a failed batch is re-applied "
    "report by report, so races and bad reports stay isolated). A heartbeat of an online "
    "node is one `UPDATE … RETURNING facts_hash`; `get_state`/`require_admin` are async "
    "(no thread hop); uvicorn runs on httptools + uvloop (now dependencies). Master CPU "
    "per report: ~2.1 ms to register, ~0.65 ms per heartbeat in a burst, ~1.1 ms in the "
    "steady state (one new connection per report, little batching at 333/s).",
    "What is left is per request on the one core the master's Python can use: accepting "
    "a connection, parsing HTTP, validating ~17 KB of facts with pydantic (registration) "
    "and answering. The limit is about 1 / (CPU per report) with the CPU to itself: "
    "~450 registrations/s, ~1,500 heartbeats/s. 10,000 nodes at 30 s (333/s) use about "
    "a third of a core.",
    "PostgreSQL is slower than SQLite on one box: each statement is a round trip to a "
    "server that shares the 2 cores, and the facts are compressed into TOAST; SQLite "
    "writes in-process. Latency tails on either grow quickly when other work takes the "
    "CPU: measured while image builds ran, the steady p99 went from ~25 ms to ~400 ms.",
]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def _cpu(phase: dict[str, Any]) -> str:
    text = f"{phase['master_cpu_pct']} %"
    if "postgres_cpu_pct" in phase:
        text += f" + PG {phase['postgres_cpu_pct']} %"
    return text


def _errors(phase: dict[str, Any]) -> str:
    bad = {k: v for k, v in phase.get("statuses", {}).items() if k not in ("200", "201")}
    bad |= phase.get("errors", {})
    if phase.get("unfinished"):
        bad["unfinished"] = phase["unfinished"]
    return ", ".join(f"{k}: {v}" for k, v in bad.items()) or "0"


def _check(check: dict[str, Any]) -> str:
    if check.get("exactly_once"):
        return f"yes ({check['nodes']} nodes)"
    return (
        f"**no**: {check['nodes']}/{check['expected']} nodes, {check['missing']} missing, "
        f"{check['duplicates']} duplicate, {check['mac_owner_wrong']} MACs misowned"
    )


def _burst_rows(backend: dict[str, Any]) -> list[str]:
    rows = [
        "| agents | registrations/s | p50 / p99 ms | heartbeats/s | p50 / p99 ms | "
        "master CPU (reg / hb) | errors | every node exactly once |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, run in backend["runs"].items():
        reg, hb = run["register"], run["heartbeat"]
        errors = f"{_errors(reg)} / {_errors(hb)}"
        rows.append(
            f"| {int(k):,} | **{reg['per_s']}** ({reg['wall_s']} s) | {_ms(reg['p50_ms'])} / "
            f"{_ms(reg['p99_ms'])} | **{hb['per_s']}** | {_ms(hb['p50_ms'])} / "
            f"{_ms(hb['p99_ms'])} | {_cpu(reg)} / {_cpu(hb)} | "
            f"{errors} | {_check(run['check'])} |"
        )
    return rows


def _steady_row(name: str, backend: dict[str, Any]) -> str | None:
    runs = [r for r in backend["runs"].values() if "steady" in r]
    if not runs:
        return None
    s = runs[-1]["steady"]
    return (
        f"| {name} | {s['nodes']:,} every {s['interval_s']:g} s ±20 % | {s['wall_s']} s | "
        f"{s['offered_per_s']} / {s['per_s']} | {_ms(s['p50_ms'])} / **{_ms(s['p99_ms'])}** / "
        f"{_ms(s['max_ms'])} | {_cpu(s)} | {s['client_cpu_s']} s | "
        f"{_errors(s)} |"
    )


def _goals(part: dict[str, Any]) -> list[str]:
    out = []
    for name, backend in part["backends"].items():
        runs = backend["runs"]
        big = runs[max(runs, key=int)]
        reg_s, ok = big["register"]["wall_s"], big["check"]["exactly_once"]
        met = reg_s <= GOAL_REGISTER_S and ok
        line = (
            f"- {name}: {int(big['agents']):,} agents registered in {reg_s} s, "
            f"{'none lost' if ok else 'NOT exactly once'} → {'met' if met else '**missed**'}"
        )
        steady = big.get("steady")
        if steady:
            p99 = steady["p99_ms"]
            good = p99 is not None and p99 < GOAL_STEADY_P99_MS
            line += f"; steady p99 {p99} ms → {'met' if good else '**missed**'}"
        out.append(line + ".")
    return out


def goals(part: dict[str, Any]) -> list[Goal]:
    """Rows for the goals table at the top of the page (largest agent count only)."""
    out: list[Goal] = []
    for name, backend in part["backends"].items():
        runs = backend["runs"]
        big = runs[max(runs, key=int)]
        agents = int(big["agents"])
        reg_s, ok = big["register"]["wall_s"], big["check"]["exactly_once"]
        out.append((f"{agents:,} agents register, none lost ({name})", "≤ 60 s",
                    f"{reg_s} s, {'exactly once' if ok else 'NOT exactly once'}",
                    reg_s <= GOAL_REGISTER_S and ok))  # fmt: skip
        steady = big.get("steady")
        if steady:
            p99 = steady["p99_ms"]
            every = steady.get("interval_s", 30)
            out.append((f"{agents:,} nodes heartbeating every {every:g} s ({name})", "p99 < 100 ms",
                        f"p99 {p99} ms", p99 is not None and p99 < GOAL_STEADY_P99_MS))  # fmt: skip
    return out


def render(part: dict[str, Any]) -> list[str]:
    out = [
        "## Discovery",
        "",
        machine_line(part.get("machine")),
        f"Reproduce: `{COMMAND}` (the real master under uvicorn on 127.0.0.1, one fresh",
        "database (PostgreSQL: schema) per size; PostgreSQL is measured when `--postgres URL`",
        "or `LIVESTRAP_TEST_POSTGRES` names one: `make bench` makes a throwaway role for it).",
        "Each simulated agent has its own UUID, serial and MACs and sends facts collected by",
        "the real agent code (a 2-socket server: ~17 KB of JSON), on a new connection per",
        "report as the agent's urllib does. Every 50th agent sends its first report twice at",
        "once; every 20th has a placeholder SMBIOS UUID (identified by MACs). Bursts keep",
        f"{_first_concurrency(part)} reports in flight; the steady state is open-loop.",
        "",
    ]
    if part.get("smoke"):
        out += ["*Smoke run (tiny sizes): the figures say nothing about speed.*", ""]
    titles = {"sqlite": "SQLite (WAL)", "postgresql": "PostgreSQL"}
    for name, backend in part["backends"].items():
        out += [f"### {titles.get(name, name)}", "", *_burst_rows(backend), ""]
    if part.get("postgres_skipped"):
        out += [f"PostgreSQL was not measured: {part['postgres_skipped']}.", ""]
    steady = [_steady_row(titles.get(n, n), b) for n, b in part["backends"].items()]
    if any(steady):
        out += [
            "### Steady state",
            "",
            "| database | nodes | for | offered / answered per s | p50 / p99 / max ms | "
            "server CPU (of one core) | load generator CPU | errors |",
            "|---|---|---|---|---|---|---|---|",
            *[row for row in steady if row],
            "",
        ]
    out += [
        f"Goals: {10_000:,} agents registered in ≤ {GOAL_REGISTER_S:g} s with none lost; "
        f"{10_000:,} nodes heartbeating every 30 s with p99 < {GOAL_STEADY_P99_MS:g} ms.",
        *_goals(part),
        "",
    ]
    if FINDINGS:
        out += ["Findings:", "", *[f"- {f}" for f in FINDINGS], ""]
    return out


def _first_concurrency(part: dict[str, Any]) -> str:
    for backend in part["backends"].values():
        for run in backend["runs"].values():
            return str(run.get("concurrency", "?"))
    return "?"
