"""Build benchmark: cold (empty package cache), warm (unchanged spec), the incremental
rebuilds (one package added, one removed, customization only) beside a full rebuild, and
the peak disk each build used, and `build --check` of the cold image (same sha256 per
artifact); then the size section (size_bench) from the cold image.

Run as root: `.venv/bin/python bench/build_bench.py [--spec FILE] [--add PACKAGE]`.
Every build holds the machine-wide build lock (bench/tools.py).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import size_bench
from report import MB, Goal, machine_line, save_part
from tools import build_lock

from livestrap.builder.events import BuildEvent, EventSink
from livestrap.builder.pipeline import build
from livestrap.builder.plan import BuildPlan
from livestrap.builder.recheck import check_image
from livestrap.cli.build_cmd import recorded_spec
from livestrap.errors import BuildError
from livestrap.spec import BuildSpec, load_spec
from livestrap.store.images import ImageStore

COMMAND = ".venv/bin/python bench/build_bench.py"
# An operator-plausible extra package that is not in the default image, with dependencies
# of its own (libjq1, libonig5) and no system account, so removing it is incremental too.
EXTRA_PACKAGE = "jq"
WARM_RUNS = 5
# A customization-only change: root gets a password hash (no package changes).
ROOT_HASH = "$y$j9T$livestrapbench$0123456789abcdefghijklmnopqrstuvwxyzABCDE"
PLUS_ONE_GOAL_S = 20
T = TypeVar("T")


class DiskPeak:
    """Samples the bytes a folder takes on disk (du, hard links counted once) every half
    second in a thread; `peak` is the largest sample."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.peak = max(self.peak, disk_bytes(self.folder))

    def __enter__(self) -> DiskPeak:
        self.peak = disk_bytes(self.folder)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, disk_bytes(self.folder))


def disk_bytes(folder: Path) -> int:
    # -x: an incremental build's rootfs is an overlay of the kept tree, counted once
    out = subprocess.run(["du", "-sx", "-B1", str(folder)], capture_output=True, text=True)
    return int(out.stdout.split()[0]) if out.returncode == 0 and out.stdout else 0


def timed(store: ImageStore, run: Callable[[EventSink], T]) -> tuple[T, dict[str, Any]]:
    """Run one build (under the build lock) with its seconds, stage times and peak disk."""
    stages: dict[str, float] = {}

    def on_event(event: BuildEvent) -> None:
        if event.kind == "stage-done" and event.stage:
            stages[event.stage] = event.data["stage_s"]

    work = store.data_dir.parent
    before = disk_bytes(work)
    with build_lock(), DiskPeak(work) as disk:
        t0 = time.monotonic()
        out = run(on_event)
        seconds = time.monotonic() - t0
    return out, {
        "seconds": round(seconds, 1),
        "stages": stages,
        "peak_disk_bytes": disk.peak - before,
    }


def timed_build(
    spec: BuildSpec, store: ImageStore, cache: Path, log: Path, force: bool = False
) -> dict[str, Any]:
    meta, figures = timed(
        store,
        lambda events: build(
            spec, store, log_path=log, events=events, cache_dir=cache, force=force
        ),
    )
    return {
        **figures,
        "base_tree": meta.base_tree,
        "image": meta.id,
        "sizes": {name: art.size for name, art in meta.artifacts.items()},
        "packages": len(meta.packages),
    }


def timed_check(image_id: str, store: ImageStore, cache: Path, log: Path) -> dict[str, Any]:
    """`livestrap build --check ID`: the image's recorded spec rebuilt (force, nothing
    committed), each artifact's sha256 set against the recorded one."""
    meta = store.get(image_id)
    spec = recorded_spec(meta, store.data_dir)
    try:
        report, figures = timed(
            store,
            lambda events: check_image(
                store, meta, spec, log_path=log, events=events, cache_dir=cache
            ),
        )
    except BuildError as err:  # a refusal: the inputs changed, or upstream is unreachable
        return {"image": image_id, "refused": f"{err.stage}: {err.message}"}
    return {
        **figures,
        "image": image_id,
        "artifacts": {
            a.name: {"recorded": a.recorded, "rebuilt": a.rebuilt, "same": a.matches}
            for a in report.artifacts
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", type=Path, help="spec to build (default spec if left out)")
    parser.add_argument("--add", default=EXTRA_PACKAGE, help="the package the +1 build adds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()
    spec_in = load_spec(args.spec) if args.spec else BuildSpec()
    work = Path(tempfile.mkdtemp(prefix="livestrap-bench-", dir="/var/tmp"))
    try:
        store = ImageStore(work / "data")
        cache = work / "cache"
        spec = BuildPlan(store.data_dir).resolve(spec_in)
        plus_one = spec.model_copy(update={"packages": [*spec.packages, args.add]})
        results: dict[str, Any] = {}
        results["cold"] = timed_build(spec, store, cache, work / "cold.log")
        # a warm build is short: the median of WARM_RUNS
        warm = [timed_build(spec, store, cache, work / "warm.log") for _ in range(WARM_RUNS)]
        results["warm"] = dict(
            sorted(warm, key=lambda w: w["seconds"])[len(warm) // 2],
            runs=[w["seconds"] for w in warm],
        )
        # from the cold build's kept tree: apt adds the package, then customize and on
        results["plus_one"] = timed_build(plus_one, store, cache, work / "plus_one.log")
        # the same spec in full (--force uses no kept tree); its tree replaces cold's
        results["rebuild"] = timed_build(plus_one, store, cache, work / "rebuild.log", True)
        # from that tree: the package purged (another label, so no stored image is reused)
        minus_one = spec.model_copy(update={"label": f"{spec.label}-minus"})
        results["minus_one"] = timed_build(minus_one, store, cache, work / "minus_one.log")
        custom = plus_one.model_copy(update={"root_password_hash": ROOT_HASH})
        results["custom_only"] = timed_build(custom, store, cache, work / "custom_only.log")
        # last, so the rows above run as before: `build --check` of the cold image
        results["check"] = timed_check(results["cold"]["image"], store, cache, work / "check.log")
        for name in ("cold", "warm", "plus_one", "rebuild", "minus_one", "custom_only"):
            print(name, results[name]["seconds"], "s", results[name]["stages"], flush=True)
        print("check", results["check"], flush=True)
        results["plus_one"]["package"] = args.add
        save_part("build", results)
        cold = store.get(results["cold"]["image"])
        size_bench.measure(store.path(cold.id), work / "sizes")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def goals(r: dict[str, Any]) -> list[Goal]:
    out: list[Goal] = [
        ("cold build", "≤ 90 s", f"{r['cold']['seconds']:.0f} s", r["cold"]["seconds"] <= 90),
        ("warm build (no upstream change)", "≤ 20 s", f"{r['warm']['seconds']:.1f} s",
         r["warm"]["seconds"] <= 20),
    ]  # fmt: skip
    if "plus_one" in r:
        s = r["plus_one"]["seconds"]
        out.append(("build after adding one package", f"≤ {PLUS_ONE_GOAL_S} s", f"{s:.0f} s",
                    s <= PLUS_ONE_GOAL_S))  # fmt: skip
    if "check" in r:
        same = reproduced(r["check"])
        got = "not checked" if same is None else ("yes" if same else "no")
        out.append(("rebuild of the cold image's inputs: same sha256", "yes", got, same))
    return out


def reproduced(check: dict[str, Any]) -> bool | None:
    """Every artifact the same (None: the check refused to run)."""
    if "artifacts" not in check:
        return None
    return all(a["same"] for a in check["artifacts"].values())


def render_check(check: dict[str, Any]) -> list[str]:
    """Per artifact: did `build --check` of the cold image give the recorded sha256?"""
    if "artifacts" not in check:
        return [f"Reproducibility: `build --check` of the cold image refused: {check['refused']}.",
                ""]  # fmt: skip
    per = ", ".join(
        f"{name} same sha256: **{'yes' if a['same'] else 'no'}**"
        for name, a in check["artifacts"].items()
    )
    return [
        "Reproducibility: `livestrap build --check` of the cold image (its recorded spec",
        "rebuilt with --force from the same upstream state, nothing committed; run after the",
        f"other rows, {check['seconds']:.1f} s):",
        f"{per}.",
        "",
    ]


def render(r: dict[str, Any]) -> list[str]:
    stages = list(r["cold"]["stages"])

    def row(name: str, b: dict[str, Any]) -> str:
        cells = " | ".join(f"{b['stages'].get(s, 0):.1f}" for s in stages)
        disk = b.get("peak_disk_bytes")
        disk_cell = f"{disk / MB:.0f}" if disk is not None else "–"
        return f"| {name} | **{b['seconds']:.1f}** | {cells} | {disk_cell} |"

    rows = [
        row("cold (empty package cache)", r["cold"]),
        row(
            f"warm (nothing changed: image reused; median of {len(r['warm'].get('runs', [1]))})",
            r["warm"],
        ),
    ]
    if "plus_one" in r:
        rows.append(row(f"+1 package (`{r['plus_one']['package']}`)", r["plus_one"]))
    if "rebuild" in r:
        rows.append(row("same +1 spec in full (--force, package cache kept)", r["rebuild"]))
    if "minus_one" in r:
        rows.append(
            row("−1 package (incremental: the package and its deps purged)", r["minus_one"])
        )
    if "custom_only" in r:
        rows.append(row("customization only (incremental: root password set)", r["custom_only"]))
    if "artifacts" in r.get("check", {}):
        rows.append(row("reproducibility check (`build --check` of the cold image)", r["check"]))
    return [
        "## Build time (seconds)",
        "",
        machine_line(r.get("machine")),
        f"Reproduce: `{COMMAND}` (as root: the default spec from the host mirror, with the",
        "agent from the master's repository; a fresh data dir and an empty package cache).",
        "",
        f"| build | total | {' | '.join(stages)} | peak disk (MB) |",
        f"|---|---|{'---|' * len(stages)}---|",
        *rows,
        "",
        "Goals: cold ≤ 90 s, warm (no upstream change) ≤ 20 s, +1 package ≤ 20 s. A warm",
        "build fetches each source's InRelease, finds the stored image made from the same",
        "inputs and reuses it. The +1, −1 and customization-only builds are incremental:",
        "they start from the root tree a full build kept (see where the time goes). Cold",
        "includes downloading every package from the",
        "host's mirror, so it depends on the network to it. Peak disk: the most the data",
        "dir and package cache grew while the build ran (du, sampled every 0.5 s).",
        "",
        *(render_check(r["check"]) if "check" in r else []),
        *where_the_time_goes(r),
    ]


def where_the_time_goes(r: dict[str, Any]) -> list[str]:
    """What was done to the build's time, and why +1 package costs a whole build."""
    plus = r.get("plus_one")
    out = [
        "Levers used (measured on this machine, same spec): dpkg runs with `force-unsafe-io`",
        "(no fsync per file; the tree is squashed, never booted from disk) and never unpacks",
        "the module trees, vendor databases and charsets the image drops (before, they were",
        "unpacked, then deleted); live-boot's initramfs hook, which does not answer",
        "mkinitramfs' `prereqs` query and so did all its work twice, is wrapped (initramfs",
        "CPU −25 %); update-initramfs runs once; squashfs uses zstd 17 instead of 18 (2.2 MB",
        "more for ~25 % less squash time). Together: cold 72 s → 51 s, squashfs 78.9 → 76.0 MB.",
    ]
    if plus and plus.get("base_tree"):
        st = plus["stages"]
        share = st["squashfs"] / plus["seconds"] * 100 if plus["seconds"] else 0.0
        met = plus["seconds"] <= PLUS_ONE_GOAL_S
        verdict = "met" if met else "**missed**"
        out += [
            "",
            "Incremental rebuilds: a full build keeps its root tree as mmdebstrap left it",
            "(before customize) in the cache, keyed by every input but the package list and",
            "the customization; at most two are kept. Keeping it is a rename plus an overlay",
            "mount (the kept tree as the read-only lower layer), measured 0.16 s against",
            "1.5 s for `cp -a --reflink=auto` of the 307 MB, 8,950-file tree (8.5 s with its",
            "writeback; ext4 has no reflink), and the overlay did not slow mksquashfs (same",
            "bytes out). A later build with the same base inputs mounts a new overlay on it,",
            "runs apt for the difference in a chroot (install, mark the dropped packages",
            "automatic, `autoremove --purge`) from the same sources, pins and package cache,",
            "and reruns customize and the rest; the initrd is remade only if apt's trigger",
            f"runs update-initramfs. +1 package (`{plus['package']}`): {plus['seconds']:.1f} s, "
            f"of which rootfs {st['rootfs']:.1f} s and",
            f"squashfs {st['squashfs']:.1f} s ({share:.0f} % of the build); the +1 goal "
            f"(≤ {PLUS_ONE_GOAL_S} s) is {verdict}.",
            "**The squashfs stage is the floor**: zstd 17 over the whole tree on 2 cores, with",
            "nothing to reuse. mksquashfs can append to an image (without -noappend), but",
            "appending never removes a file and puts a changed folder beside the old one as",
            "`etc_1` (tried: a removed file stayed, the old `etc/status` was kept, the new one",
            "went to `etc_1/status`), so it cannot make a correct image of a changed tree.",
        ]
    return [*out, ""]


if __name__ == "__main__":
    main()
