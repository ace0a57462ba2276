"""The `## Several masters` section of docs/benchmarks.md, from the `multimaster` part.

The limit is derived from the figures, never written by hand: a re-run on another
machine (more cores, a remote PostgreSQL) says what holds there.
"""

from __future__ import annotations

from typing import Any

from report import machine_line

COMMAND = "scripts/test-postgres.sh .venv/bin/python bench/multimaster_bench.py"
SATURATED = 0.85  # of all cores busy: the machine, not one process, is the limit
ONE_CORE = 80.0  # % of one core: that single-threaded process is the limit
NOISY = 20.0  # % of one core of other work: say that the figures are disturbed


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


def other_work(run: dict[str, Any], cores: int) -> float:
    """% of one core busy with neither the masters, PostgreSQL nor the load generator
    (the kernel's loopback work, the sampler, whatever else runs on the machine)."""
    s = shares(run)
    ours = s["masters"] + s["PostgreSQL"] + s["load generator"]
    return max(0.0, _busy(run, cores) * cores - ours)


def per_registration_ms(run: dict[str, Any]) -> dict[str, float]:
    """CPU milliseconds each party spends on one registration."""
    ok = run["ok"] or 1
    return {
        "masters": 1000 * sum(run["master_cpu_s"]) / ok,
        "PostgreSQL": 1000 * run["postgres_all_cpu_s"] / ok,
        "load generator": 1000 * run["client_cpu_s"] / ok,
    }


def _busy(run: dict[str, Any], cores: int) -> float:
    """% of all cores busy during the phase (from /proc/stat, or the parties' sum)."""
    if "machine_busy_pct" in run:
        return float(run["machine_busy_pct"])
    s = shares(run)
    return (s["masters"] + s["PostgreSQL"] + s["load generator"]) / cores


def _top_wait(run: dict[str, Any]) -> str:
    waits: dict[str, int] = run.get("pg_waits") or {}
    return max(waits, key=lambda k: waits[k]) if waits else "?"


def limit(run: dict[str, Any], cores: int) -> str:
    """Which of master CPU, PostgreSQL or the load generator held this run back: the
    cores when all are busy (naming the biggest consumer); else the process using one
    core whole; else PostgreSQL when its backends are mostly running a statement, and the
    masters when they mostly sit idle in a transaction, waiting for a master."""
    s = shares(run)
    if _busy(run, cores) >= 100 * SATURATED:
        parts = {"master CPU": s["masters"], "PostgreSQL": s["PostgreSQL"],
                 "load generator": s["load generator"],
                 "other work": other_work(run, cores)}  # fmt: skip
        return f"the {cores} cores, most of it {max(parts, key=lambda k: parts[k])}"
    if s["busiest master"] >= ONE_CORE:
        return "master CPU (one master's core)"
    if s["load generator"] >= ONE_CORE:
        return "load generator (its core)"
    if run.get("pg_active_avg", 0) >= run.get("pg_idle_in_tx_avg", 0):
        return f"PostgreSQL (waits: {_top_wait(run)})"
    return "the masters (PostgreSQL sits idle in their transactions)"


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


def _rows(runs: dict[str, dict[str, Any]]) -> list[str]:
    base = runs[min(runs, key=int)]["per_s"] or 1.0
    rows = [
        "| masters | registrations/s | × one master | all runs /s | p50 / p99 ms | errors "
        "| every node exactly once |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, run in runs.items():
        rows.append(
            f"| {n} | **{run['per_s']}** ({run['wall_s']} s) | {run['per_s'] / base:.2f} | "
            f"{', '.join(str(r) for r in run.get('repeats_per_s', [run['per_s']]))} | "
            f"{_ms(run['p50_ms'])} / {_ms(run['p99_ms'])} | {_errors(run)} | "
            f"{_check(run['check'])} |"
        )
    return rows


def _cpu_rows(runs: dict[str, dict[str, Any]], cores: int) -> list[str]:
    rows = [
        "| masters | each master | PostgreSQL (ours / all) | load generator | other work "
        "| all cores busy (steal) | PG backends active (idle in tx) "
        "| CPU ms per registration: masters / PG / load | limit |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n, run in runs.items():
        s, ms, wall = shares(run), per_registration_ms(run), run["wall_s"] or 1.0
        each = " + ".join(f"{100 * c / wall:.0f} %" for c in run["master_cpu_s"])
        busy = f"{_busy(run, cores):.0f} % ({run.get('machine_steal_pct', '?')} %)"
        active = f"{run.get('pg_active_avg', '?')} ({run.get('pg_idle_in_tx_avg', '?')})"
        rows.append(
            f"| {n} | {each} | {100 * run['postgres_cpu_s'] / wall:.0f} / "
            f"{s['PostgreSQL']:.0f} % | {s['load generator']:.0f} % | "
            f"{other_work(run, cores):.0f} % | {busy} | {active} | "
            f"{ms['masters']:.2f} / {ms['PostgreSQL']:.2f} / {ms['load generator']:.2f} | "
            f"{limit(run, cores)} |"
        )
    return rows


def _postgres_side(runs: dict[str, dict[str, Any]]) -> str:
    """Whether PostgreSQL waits on the masters or they on it, from its backends' states."""
    active = sum(r.get("pg_active_avg", 0.0) for r in runs.values())
    idle = sum(r.get("pg_idle_in_tx_avg", 0.0) for r in runs.values())
    if idle > active:
        return (
            f"- PostgreSQL is not the limit: its backends sat idle in a transaction (waiting "
            f"for a master's next statement) {idle / (active or 0.01):.0f}× as often as they "
            "ran one, so it waits on the masters, not they on it."
        )
    return (
        "- PostgreSQL's backends ran a statement more often than they waited for a master "
        f"(mostly {_top_wait(max(runs.values(), key=lambda r: r['masters']))}): the masters "
        "wait on it."
    )


def verdict(runs: dict[str, dict[str, Any]], cores: int) -> list[str]:
    """What the figures say: the speed-up, what set the limit in each run, and the
    ceiling this machine allows whatever the number of masters."""
    one, most = runs[min(runs, key=int)], runs[max(runs, key=int)]
    best = max(runs.values(), key=lambda r: r["per_s"] or 0.0)
    beyond = (
        ""
        if best is most
        else (
            f"; more add nothing once the cores are busy ({_busy(most, cores):.0f} % with "
            f"{most['masters']})"
        )
    )
    out = [
        f"- In short: best with {best['masters']} master{'s' if best['masters'] > 1 else ''}, "
        f"{best['per_s']}/s (×{best['per_s'] / (one['per_s'] or 1):.2f} of one){beyond}. "
        f"The limit is {limit(most, cores)}."
    ]
    for run in runs.values():
        s, n = shares(run), run["masters"]
        out.append(
            f"- {n} master{'s' if n > 1 else ''}: {run['per_s']}/s "
            f"(×{run['per_s'] / (one['per_s'] or 1):.2f}), limited by {limit(run, cores)}: "
            f"busiest master at {s['busiest master']:.0f} % of a core, PostgreSQL at "
            f"{s['PostgreSQL']:.0f} % ({run.get('pg_active_avg', '?')} backends active on "
            f"average), the load generator at {s['load generator']:.0f} %, other work at "
            f"{other_work(run, cores):.0f} %; all cores {_busy(run, cores):.0f} % busy."
        )
    out.append(_postgres_side(runs))
    noisy = max(runs.values(), key=lambda r: other_work(r, cores))
    if other_work(noisy, cores) >= NOISY:
        out.append(
            f"- Other work took {other_work(noisy, cores):.0f} % of a core during the "
            f"{noisy['masters']}-master phase (other users, or the kernel, on this machine): "
            "its figures are lower than an idle machine's, and the speed-ups less certain."
        )
    costs = ", ".join(
        f"{per_registration_ms(r)['masters']:.2f} ms with {n}" for n, r in runs.items()
    )
    per = [per_registration_ms(r)["masters"] for r in runs.values()]
    why = (
        "it grows with more masters: each has fewer reports queued to batch into one "
        "commit, and more processes take turns on the cores"
        if max(per) > 1.2 * per[0]
        else "about the same however many masters: the work per report does not grow"
    )
    out.append(f"- Master CPU per registration: {costs}; {why}.")
    ms = per_registration_ms(most)
    cost = sum(ms.values()) or 1.0
    share = {k: 100 * v / cost for k, v in ms.items()}
    out.append(
        f"- A registration costs {cost:.2f} ms of CPU in all with {most['masters']} masters "
        f"(masters {share['masters']:.0f} %, PostgreSQL {share['PostgreSQL']:.0f} %, load "
        f"generator {share['load generator']:.0f} %): {cores} cores allow at most "
        f"~{1000 * cores / cost:.0f} registrations/s however many masters share them. A "
        "second master helps only while one master's core is the limit and another core "
        "idles; on more cores (or hosts) masters scale until PostgreSQL's share fills its own."
    )
    return out


def _intro(part: dict[str, Any], first: dict[str, Any]) -> list[str]:
    repeats = int(part.get("repeats", 1))
    times = "once" if repeats == 1 else f"{repeats} times, in rounds of all counts"
    return [
        f"Reproduce: `{COMMAND}` (as root; `make bench` runs it). For each count, that many",
        "real masters start at once on one fresh PostgreSQL schema and one data dir (as",
        "`tests/api/test_multi_master.py` runs them); "
        f"{first['agents']:,} simulated agents (those of the discovery",
        "section) send their first reports round-robin over them, "
        f"{first['concurrency']} in flight in all.",
        "A phase starts once the machine is idle (< 15 % busy; waiting ≤ "
        f"{part.get('quiet_wait_s', 60):g} s); each count ran {times}, and the tables keep",
        "the run with the least other work (every run's rate under *all runs*).",
        "",
        "CPU comes from /proc: each master process, this load generator (its sampler thread",
        "taken off), and PostgreSQL: *ours* is the backends of the benchmark's role, *all*",
        "every postgres process (with the WAL writer and checkpointer, and other users' work",
        "on a shared machine; the figures below use it). Every 0.25 s pg_stat_activity says",
        "how many of our backends run a statement (and what they wait on), /proc/stat how",
        "busy all cores are (steal: taken by the hypervisor for other guests); *other work*",
        "is the rest (the kernel's loopback work, other users). The limit is derived: all",
        "cores ≥ 85 % busy → the cores (naming the biggest consumer); else a master or the",
        "load generator ≥ 80 % of its core → that; else PostgreSQL if its backends are more",
        "often running a statement than idle in a transaction, and the masters if not.",
        "",
    ]


def render(part: dict[str, Any]) -> list[str]:
    runs: dict[str, dict[str, Any]] = part["runs"]
    cores = int((part.get("machine") or {}).get("cores") or 1)
    out = ["## Several masters on one PostgreSQL", "", machine_line(part.get("machine"))]
    out += _intro(part, next(iter(runs.values())))
    if part.get("smoke"):
        out += ["*Smoke run (tiny sizes): the figures say nothing about speed.*", ""]
    out += [
        *_rows(runs),
        "",
        f"CPU during each phase, in % of one core (all cores: of {100 * cores} %):",
        "",
        *_cpu_rows(runs, cores),
        "",
    ]
    out += ["What limits it:", "", *verdict(runs, cores), ""]
    return out
