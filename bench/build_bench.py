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
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import load_results, save_results

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


if __name__ == "__main__":
    main()
