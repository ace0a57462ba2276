"""Firmware in images: the squashfs, the initrd and the boot RAM of the default image,
with `firmware: [bnx2x]` and with `firmware: all-network` (three forced builds, agent
off, everything else the default spec), and the firmware files each one keeps.

Writes the `firmware` part of bench/results.json and re-renders docs/benchmarks.md. Run
as root: `.venv/bin/python bench/firmware_bench.py` (about 10 minutes on 2 cores).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from report import MB, machine_line, save_part  # noqa: E402

from helpers import TEST_CACHE  # noqa: E402
from livestrap.builder.pipeline import build  # noqa: E402
from livestrap.resolve import resolve  # noqa: E402
from livestrap.spec import parse_spec  # noqa: E402
from livestrap.store.images import ImageStore  # noqa: E402

SPECS: dict[str, list[str] | str] = {
    "default": [],
    "bnx2x": ["bnx2x"],
    "all-network": "all-network",
}


def _listing(argv: list[str]) -> list[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()


def measure(name: str, firmware: list[str] | str, work: Path) -> dict[str, Any]:
    store = ImageStore(work / f"data-{name}")
    spec = resolve(parse_spec({"label": f"fw-{name}", "agent": False, "firmware": firmware}))
    started = time.monotonic()
    meta = build(spec, store, log_path=work / f"{name}.log", cache_dir=TEST_CACHE, force=True,
                 keep_tree=False)  # fmt: skip
    seconds = time.monotonic() - started
    folder = store.path(meta.id)
    root = _listing(["unsquashfs", "-l", "-d", "", str(folder / "root.squashfs")])
    initrd = _listing(["lsinitramfs", str(folder / "initrd.img")])
    return {
        "seconds": round(seconds, 1),
        "squashfs": meta.artifacts["root.squashfs"].size,
        "initrd": meta.artifacts["initrd.img"].size,
        "boot_ram_mb": meta.boot_ram_mb,
        "firmware_packages": meta.firmware_packages,
        "fw_entries_in_squashfs": sum(p.startswith("/usr/lib/firmware/") for p in root),
        "fw_entries_in_initrd": sum("lib/firmware/" in p for p in initrd),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="livestrap-fwbench-") as tmp:
        runs = {name: measure(name, fw, Path(tmp)) for name, fw in SPECS.items()}
    save_part("firmware", {"runs": runs})


def render(r: dict[str, Any]) -> list[str]:
    out = [
        "## Image size with firmware",
        "",
        machine_line(r.get("machine")),
        "Reproduce: `.venv/bin/python bench/firmware_bench.py` (as root; three forced builds,",
        "agent off, the default spec otherwise).",
        "",
        "| spec | packages | root.squashfs (MB) | initrd (MB) | boot RAM (MiB) | firmware entries"
        " in squashfs / initrd | build (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, run in r["runs"].items():
        packages = len(run.get("firmware_packages") or {})
        label = "default" if name == "default" else f"`firmware: {name}`"
        out.append(
            f"| {label} | {packages} | {run['squashfs'] / MB:.1f} | {run['initrd'] / MB:.1f} | "
            f"{run['boot_ram_mb']} | {run['fw_entries_in_squashfs']} / "
            f"{run['fw_entries_in_initrd']} | {run['seconds']:.0f} |"
        )
    return [*out, "", *NOTES, ""]


NOTES = [
    "`all-network` installs nine `firmware-*` packages (226 MB of files); the image keeps",
    "only what its kept modules declare (44.9 MB for 32 modules; netronome alone goes from",
    "147 MB to 26 MB), and the initramfs carries the NIC firmware too, since live-boot's",
    "download runs there. Build times were taken while other builds and VMs shared the 2",
    "cores: compare the sizes, not the seconds.",
]


if __name__ == "__main__":
    main()
