"""Boot benchmark: PXE power-on -> registered for BIOS and UEFI virtual nodes, the boot
timeline, and the smallest memory that still boots and registers.

Uses the active image of DATA_DIR (default: the e2e data dir the tests keep) and writes
the `boot` part of bench/results.json, then re-renders docs/benchmarks.md. Run as root:
`.venv/bin/python bench/boot_bench.py [--data-dir D] [--memory 512,448,384]`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from report import load_results, machine_line, save_results  # noqa: E402

from livestrap.netboot.qemu import NodeSpec  # noqa: E402
from livestrap.netboot.vm import VirtualNode, kvm_usable  # noqa: E402
from masterproc import Master, master_process  # noqa: E402

TIMEOUT_S = 420


def boot_once(master: Master, work: Path, name: str, **spec: Any) -> dict[str, Any]:
    port = int(master.url.rsplit(":", 1)[1])
    node = VirtualNode(NodeSpec(name=name, master_port=port, **spec), work / name)
    node.start(max_s=TIMEOUT_S + 30)
    try:
        with master.admin() as client:
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and node.running():
                found = client.get("/api/v1/nodes", params={"mac": node.spec.mac(0)}).json()
                if found:
                    seconds = time.monotonic() - node.started_at
                    events = client.get(f"/api/v1/nodes/{found[0]['id']}/timeline").json()
                    return {"registered_s": round(seconds, 1), "timeline": phases(events)}
                time.sleep(1)
        return {"registered_s": None, "console_tail": node.console()[-2000:]}
    finally:
        node.stop()


def phases(events: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds from the iPXE script request to each later step."""
    from datetime import datetime

    times = {e["kind"]: datetime.fromisoformat(e["at"].replace("Z", "+00:00")) for e in
             reversed(events)}  # fmt: skip
    start = times.get("script")
    return {k: round((t - start).total_seconds(), 1) for k, t in times.items()} if start else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("/var/cache/livestrap-test/e2e-data"))
    parser.add_argument("--memory", default="512,448,384", help="MiB sizes to try, largest first")
    args = parser.parse_args()
    results = load_results()
    with tempfile.TemporaryDirectory(prefix="livestrap-bootbench-") as tmp:
        work = Path(tmp)
        with master_process(args.data_dir, fake_builds=False,
                            database_url=f"sqlite:///{work / 'db.sqlite'}") as master:  # fmt: skip
            boot: dict[str, Any] = {"accel": "kvm" if kvm_usable() else "tcg", "runs": {}}
            for fw in ("bios", "uefi"):
                boot["runs"][fw] = boot_once(master, work, f"bench-{fw}", firmware=fw)
                print(fw, boot["runs"][fw].get("registered_s"), flush=True)
            smallest = None
            for mib in (int(m) for m in args.memory.split(",")):
                run = boot_once(master, work, f"bench-mem{mib}", memory_mib=mib)
                print(f"{mib} MiB", run.get("registered_s"), flush=True)
                boot["runs"][f"bios-{mib}MiB"] = run
                if run["registered_s"] is None:
                    break
                smallest = mib
            boot["smallest_memory_mib"] = smallest
    results["boot"] = boot
    save_results(results)


def render(r: dict[str, Any]) -> list[str]:
    runs = r["runs"]
    out = [
        f"## Boot: PXE power-on → registered ({r['accel'].upper()})",
        "",
        machine_line(r.get("machine")),
        "Reproduce: `.venv/bin/python bench/boot_bench.py` (as root; QEMU virtual nodes,",
        "user-mode networking, the master on 127.0.0.1; `-cpu qemu64` under TCG).",
        "",
        "| run | registered after (s) | iPXE script → kernel → initrd → squashfs start → "
        "squashfs end → report (s) |",
        "|---|---|---|",
    ]
    for name, run in runs.items():
        t = run.get("timeline", {})
        steps = " / ".join(
            str(t.get(k, "–"))
            for k in ("kernel", "initrd", "squashfs-start", "squashfs-end", "report")
        )
        out.append(f"| {name} | {run.get('registered_s') or 'did not register'} | {steps} |")
    out += [
        "",
        f"Smallest memory that still registered: **{r.get('smallest_memory_mib')} MiB**.",
        "",
    ]
    return out


if __name__ == "__main__":
    main()
