"""Build benchmark: cold build (empty package cache), warm rebuild, artifact sizes.

Writes bench/results.json and docs/benchmarks.md. Run as root: `make bench`
(or `.venv/bin/python bench/build_bench.py [--spec FILE]`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import MB, load_results, machine, machine_line, save_results

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
    everything = load_results()
    everything["build"] = results
    save_results(everything)
    print(json.dumps(results, indent=2))


def render(r: dict[str, Any]) -> list[str]:
    stages = list(r["cold"]["stages"])

    def row(name: str, b: dict[str, Any]) -> str:
        cells = " | ".join(f"{b['stages'].get(s, 0):.1f}" for s in stages)
        return f"| {name} | **{b['seconds']:.1f}** | {cells} |"

    sizes = r["cold"]["sizes"]
    return [
        "## Build time (seconds)",
        "",
        machine_line(r.get("machine")),
        "Reproduce: `.venv/bin/python bench/build_bench.py` (as root: the default",
        "spec from the host mirror, with the agent from the master's repository).",
        "",
        f"| build | total | {' | '.join(stages)} |",
        f"|---|---|{'---|' * len(stages)}",
        row("cold (empty package cache)", r["cold"]),
        row("warm (nothing changed: image reused)", r["warm"]),
        row("rebuild (--force, package cache kept)", r["rebuild"]),
        "",
        "## Image size (default spec, zstd level 18)",
        "",
        "| artifact | MB |",
        "|---|---|",
        *[f"| {name} | {size / MB:.1f} |" for name, size in sizes.items()],
        f"| **total a node downloads** | **{sum(sizes.values()) / MB:.1f}** |",
        "",
    ]


if __name__ == "__main__":
    main()
