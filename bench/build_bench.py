"""Build benchmark: cold build (empty package cache), warm rebuild, artifact sizes.

Writes bench/results.json and docs/benchmarks.md. Run as root: `make bench`
(or `.venv/bin/python bench/build_bench.py [--spec FILE]`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from livestrap.build.events import BuildEvent
from livestrap.build.pipeline import build
from livestrap.packaging.master_repo import MasterRepo, with_master_repo
from livestrap.spec import BuildSpec, load_spec, resolve_spec
from livestrap.store.images import ImageStore

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "make bench   # = .venv/bin/python bench/build_bench.py"


def timed_build(
    spec: BuildSpec, store: ImageStore, cache: Path, log: Path, force: bool = False
) -> dict[str, Any]:
    stages: dict[str, float] = {}

    def on_event(event: BuildEvent) -> None:
        if event.kind == "stage-done" and event.stage:
            stages[event.stage] = event.data["stage_s"]

    t0 = time.monotonic()
    meta = build(spec, store, log_path=log, events=on_event, cache_dir=cache, force=force)
    return {
        "seconds": round(time.monotonic() - t0, 1),
        "stages": stages,
        "image": meta.id,
        "sizes": {name: art.size for name, art in meta.artifacts.items()},
        "packages": len(meta.packages),
    }


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30),
    }


def render_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    cold, warm, rebuild = results["cold"], results["warm"], results["rebuild"]
    mb = 1e6
    stage_names = list(cold["stages"])

    def row(name: str, r: dict[str, Any]) -> str:
        cells = " | ".join(f"{r['stages'].get(s, 0):.1f}" for s in stage_names)
        return f"| {name} | **{r['seconds']:.1f}** | {cells} |"

    sizes = cold["sizes"]
    total = sum(sizes.values())
    return "\n".join(
        [
            "# Benchmarks",
            "",
            f"Machine: {m['cores']} cores, {m['mem_gib']} GiB, Linux {m['kernel']}, "
            f"Python {m['python']}; measured {results['date']}.",
            f"Reproduce: `{COMMAND}` (as root; builds the default spec from the host mirror).",
            "",
            "## Build time (seconds)",
            "",
            f"| build | total | {' | '.join(stage_names)} |",
            f"|---|---|{'---|' * len(stage_names)}",
            row("cold (empty package cache)", cold),
            row("warm (nothing changed: image reused)", warm),
            row("rebuild (--force, package cache kept)", rebuild),
            "",
            "Goals: cold ≤ 90 s, warm (no upstream change) ≤ 20 s. A warm build fetches each",
            "source's InRelease, finds the stored image made from the same inputs and reuses it;",
            "`--force` rebuilds from the package cache. Cold includes downloading every package",
            "from the host's mirror, so it depends on the network to it.",
            "",
            "## Image size (default spec, zstd)",
            "",
            "| artifact | MB |",
            "|---|---|",
            *[f"| {name} | {size / mb:.1f} |" for name, size in sizes.items()],
            f"| **total a node downloads** | **{total / mb:.1f}** |",
            "",
            "Goals: root.squashfs ≤ 80 MB with every storage and network driver kept, "
            "initrd ≤ 20 MB.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, help="spec to build (default spec if left out)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()
    spec = resolve_spec(load_spec(args.spec) if args.spec else BuildSpec())
    work = Path(tempfile.mkdtemp(prefix="livestrap-bench-", dir="/var/tmp"))
    try:
        store = ImageStore(work / "data")
        cache = work / "cache"
        repo = MasterRepo(store.data_dir)
        repo.ensure_published(log=lambda _: None)
        spec = with_master_repo(spec, repo)
        results = {
            "date": time.strftime("%Y-%m-%d"),
            "machine": machine(),
            "cold": timed_build(spec, store, cache, work / "cold.log"),
            "warm": timed_build(spec, store, cache, work / "warm.log"),
            "rebuild": timed_build(spec, store, cache, work / "rebuild.log", force=True),
        }
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    (ROOT / "bench/results.json").write_text(json.dumps(results, indent=2) + "\n")
    (ROOT / "docs/benchmarks.md").write_text(render_markdown(results))
    print(render_markdown(results))


if __name__ == "__main__":
    main()
