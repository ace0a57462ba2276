"""The `## Several masters` section of docs/benchmarks.md, from the `multimaster` part.

The limit is derived from the figures, never written by hand: a re-run on another
machine (more cores, a remote PostgreSQL) says what holds there.
"""

from __future__ import annotations

from typing import Any

from report import machine_line

COMMAND = "scripts/test-postgres.sh .venv/bin/python bench/multimaster_bench.py"
SATURATED = 0.85  # of all cores busy: the machine, not one process, is the limit
ONE_CORE = 90.0  # % of one core: that single-threaded process is the limit


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def shares(run: dict[str, Any]) -> dict[str, float]:
    """CPU of each party during the phase, in % of one core."""
    wall = run["wall_s"] or 1.0
    return {
        "masters": 100 * sum(run["master_cpu_s"]) / wall,
        "busiest master": 100 * max(run["master_cpu_s"]) / wall,
        "PostgreSQL": 100 * run["postgres_all_cpu_s"] / wall,
        "load generator": 100 * run["client_cpu_s"] / wall,
    }


def per_registration_ms(run: dict[str, Any]) -> dict[str, float]:
    """CPU milliseconds each party spends on one registration."""
    ok = run["ok"] or 1
    return {
        "masters": 1000 * sum(run["master_cpu_s"]) / ok,
        "PostgreSQL": 1000 * run["postgres_all_cpu_s"] / ok,
        "load generator": 1000 * run["client_cpu_s"] / ok,
    }


def limit(run: dict[str, Any], cores: int) -> str:
    """Which of master CPU, PostgreSQL or the load generator held this run back."""
    s = shares(run)
    total = s["masters"] + s["PostgreSQL"] + s["load generator"]
    if total >= SATURATED * 100 * cores:
        parts = {"master CPU": s["masters"], "PostgreSQL": s["PostgreSQL"],
                 "load generator": s["load generator"]}  # fmt: skip
        return f"all {cores} cores busy, most of it {max(parts, key=lambda k: parts[k])}"
    if s["busiest master"] >= ONE_CORE:
        return "master CPU (one master's core)"
    if s["load generator"] >= ONE_CORE:
        return "load generator (its core)"
    return "PostgreSQL (masters wait on it)"


def _errors(run: dict[str, Any]) -> str:
    bad = {k: v for k, v in run.get("statuses", {}).items() if k not in ("200", "201")}
    bad |= run.get("errors", {})
    return ", ".join(f"{k}: {v}" for k, v in bad.items()) or "0"


def _check(check: dict[str, Any]) -> str:
    if check.get("exactly_once"):
        return f"yes ({check['nodes']:,} nodes)"
    return (
        f"**no**: {check['nodes']}/{check['expected']} nodes, {check['missing']} missing, "
        f"{check['duplicates']} duplicate"
    )


def _rows(runs: dict[str, dict[str, Any]], cores: int) -> list[str]:
    base = runs[min(runs, key=int)]["per_s"] or 1.0
    rows = [
        "| masters | registrations/s | × one | p50 / p99 ms | CPU % of one core: each master "
        "| PostgreSQL (ours / all) | load generator | total (of "
        f"{100 * cores} %) | CPU ms per registration (masters / PG / load) | limit | errors "
        "| every node exactly once |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, run in runs.items():
        s, ms, wall = shares(run), per_registration_ms(run), run["wall_s"] or 1.0
        each = " + ".join(f"{100 * c / wall:.0f}" for c in run["master_cpu_s"])
        total = s["masters"] + s["PostgreSQL"] + s["load generator"]
        rows.append(
            f"| {n} | **{run['per_s']}** ({run['wall_s']} s) | {run['per_s'] / base:.2f} | "
            f"{_ms(run['p50_ms'])} / {_ms(run['p99_ms'])} | {each} | "
            f"{100 * run['postgres_cpu_s'] / wall:.0f} / {s['PostgreSQL']:.0f} | "
            f"{s['load generator']:.0f} | {total:.0f} | {ms['masters']:.2f} / "
            f"{ms['PostgreSQL']:.2f} / {ms['load generator']:.2f} | {limit(run, cores)} | "
            f"{_errors(run)} | {_check(run['check'])} |"
        )
    return rows


def verdict(runs: dict[str, dict[str, Any]], cores: int) -> list[str]:
    """What the figures say: the speed-up, what set the limit, and the ceiling this
    machine allows whatever the number of masters."""
    one, most = runs[min(runs, key=int)], runs[max(runs, key=int)]
    ms = per_registration_ms(most)
    cost = sum(ms.values())
    ceiling = 1000 * cores / cost if cost else 0.0
    s1, sn = shares(one), shares(most)
    share_of = {k: 100 * v / (sum(ms.values()) or 1) for k, v in ms.items()}
    out = [
        f"- {one['masters']} master: {one['per_s']}/s, limited by {limit(one, cores)}: the "
        f"master at {s1['busiest master']:.0f} % of a core, PostgreSQL at "
        f"{s1['PostgreSQL']:.0f} %, the load generator at {s1['load generator']:.0f} %.",
        f"- {most['masters']} masters: {most['per_s']}/s (×{most['per_s'] / one['per_s']:.2f}), "
        f"limited by {limit(most, cores)}. Of the CPU a registration costs ({cost:.2f} ms), "
        f"the masters take {share_of['masters']:.0f} %, PostgreSQL "
        f"{share_of['PostgreSQL']:.0f} %, the load generator {share_of['load generator']:.0f} %"
        f" (busiest master at {sn['busiest master']:.0f} % of a core).",
        f"- At that cost {cores} cores allow at most ~{ceiling:.0f} registrations/s, however "
        "many masters share them: a second master helps only while one master's core is "
        "the limit and another core is idle. More masters scale on more cores (or hosts), "
        "until PostgreSQL's share fills its own.",
    ]
    return out


def render(part: dict[str, Any]) -> list[str]:
    runs: dict[str, dict[str, Any]] = part["runs"]
    first = next(iter(runs.values()))
    cores = int((part.get("machine") or {}).get("cores") or 1)
    out = [
        "## Several masters on one PostgreSQL",
        "",
        machine_line(part.get("machine")),
        f"Reproduce: `{COMMAND}` (as root; `make bench` runs it). For each count, that many",
        "real masters start at once on one fresh PostgreSQL schema and one data dir (as",
        "`tests/api/test_multi_master.py` runs them); "
        f"{first['agents']:,} simulated agents (those of the",
        "discovery section) send their first reports round-robin over them, "
        f"{first['concurrency']} in flight in all.",
        "CPU comes from /proc: each master process, this load generator (its /proc sampler",
        "taken off), and PostgreSQL: *ours* is the backends of the benchmark's role, *all*",
        "every postgres process (with the WAL writer and checkpointer; it is the figure the",
        "limit uses, and includes other users' work on a shared machine).",
        "",
    ]
    if part.get("smoke"):
        out += ["*Smoke run (tiny sizes): the figures say nothing about speed.*", ""]
    out += [*_rows(runs, cores), "", "What limits it:", "", *verdict(runs, cores), ""]
    return out
