"""bench/results.json <-> docs/benchmarks.md: each benchmark module fills its own part of
the results and renders its own section; this module only stitches them together.

Every section module (`bench/<name>_bench.py`) offers `render(part) -> list[str]`; one
that sets its figures against another section's names those parts in `SEES`, and gets
them as keyword arguments (`render(part, boot=...)`), so it re-renders when they change.
`LIVESTRAP_BENCH_OUT` (a folder) redirects both files, so the smoke run that CI makes
never touches the committed figures.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import platform
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MB = 1e6

# (results key, module that measured it), in page order
SECTIONS = [
    ("build", "build_bench"),
    ("size", "size_bench"),
    ("firmware", "firmware_bench"),
    ("boot", "boot_bench"),
    ("boot_paths", "bootpath_bench"),
    ("serving", "serve_bench"),
    ("discovery", "discovery_bench"),
    ("multimaster", "multimaster_bench"),
    ("peer", "peer_bench"),
    ("console", "console_bench"),
    ("actions", "action_bench"),
]


def _paths() -> tuple[Path, Path]:
    out = os.environ.get("LIVESTRAP_BENCH_OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        return Path(out) / "results.json", Path(out) / "benchmarks.md"
    return ROOT / "bench/results.json", ROOT / "docs/benchmarks.md"


def smoke_mode() -> bool:
    """Smoke runs (CI) use tiny sizes and never write the committed figures."""
    return bool(os.environ.get("LIVESTRAP_BENCH_OUT"))


def load_results() -> dict[str, Any]:
    results, _ = _paths()
    return json.loads(results.read_text()) if results.exists() else {}


def save_part(key: str, part: dict[str, Any]) -> None:
    """Store one section's figures (with the machine they ran on) and re-render the page."""
    results = load_results()
    part.setdefault("machine", machine())
    results[key] = part
    save_results(results)


def save_results(results: dict[str, Any]) -> None:
    results_path, page = _paths()
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    page.write_text(render(results))


@functools.cache
def accel() -> str:
    """KVM or TCG for virtual nodes, probed once per process: where KVM may work the probe
    boots a VM for a few seconds, and every section saves the machine it ran on."""
    from livestrap.netboot.vm import kvm_usable

    return "kvm" if kvm_usable() else "tcg"


def machine() -> dict[str, Any]:
    """Where a figure was measured: cores, memory, kernel, and whether VMs had KVM."""
    return {
        "cores": os.cpu_count(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "accel": accel(),
        "load_1min": round(os.getloadavg()[0], 2),  # other work on the machine skews figures
    }


def machine_line(m: dict[str, Any] | None) -> str:
    if not m:
        return ""
    accel = m.get("accel", "?").upper()
    load = f", load average {m['load_1min']} when saved" if "load_1min" in m else ""
    return (
        f"Measured on {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}, "
        f"Python {m['python']}, virtual nodes with {accel}{load}."
    )


Goal = tuple[str, str, str, bool | None]  # what, target, measured, met (None: not measured)


def render_goals(results: dict[str, Any]) -> list[str]:
    """One table of every goal the issue sets, from the sections that define `goals`."""
    rows: list[Goal] = []
    for key, module in SECTIONS:
        if key in results:
            section = importlib.import_module(module)
            if hasattr(section, "goals"):
                rows += section.goals(results[key])
    if not rows:
        return []
    mark = {True: "met", False: "**missed**", None: "not measured"}
    return [
        "## Goals at a glance",
        "",
        "| goal | target | measured | |",
        "|---|---|---|---|",
        *[f"| {what} | {target} | {got} | {mark[met]} |" for what, target, got, met in rows],
        "",
        "Each missed goal has its cause and the measured limit in its section below.",
        "",
    ]


def render(results: dict[str, Any]) -> str:
    lines = [
        "# Benchmarks",
        "",
        "Reproduce everything: `make bench` (as root; about 25 minutes on 2 cores). Each",
        "section names the command that reproduces it alone. `make bench-smoke` runs the",
        "same harness with tiny sizes into a temporary folder (CI does, so it cannot rot).",
        "",
    ]
    lines += render_goals(results)
    for key, module in SECTIONS:
        if key in results:
            lines += render_section(key, module, results)
    return "\n".join(lines) + "\n"


def render_section(key: str, module: str, results: dict[str, Any]) -> list[str]:
    """One section, with the other sections' parts it names in `SEES` (those measured)."""
    section = importlib.import_module(module)
    seen = {name: results[name] for name in getattr(section, "SEES", ()) if name in results}
    lines: list[str] = section.render(results[key], **seen)
    return lines
