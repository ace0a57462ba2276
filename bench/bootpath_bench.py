"""Boot paths side by side: power-on -> registered over iPXE (BIOS and UEFI), the Secure
Boot chain (OVMF enforcing with Microsoft's keys: shim -> Debian's GRUB -> kernel, over
the TFTP tree the master keeps) and, where the netns harness is here, UEFI HTTP boot.

One master, one run, the same image: the paths are compared with each other, not with
figures from other runs. Writes the `boot_paths` part of bench/results.json and
re-renders docs/benchmarks.md. Run as root:
`.venv/bin/python bench/bootpath_bench.py [--data-dir D] [--runs 2]`.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from report import accel, machine_line, save_part  # noqa: E402

from livestrap.netboot.qemu import NodeSpec  # noqa: E402
from livestrap.netboot.tftptree import SHIM  # noqa: E402
from livestrap.netboot.vm import VirtualNode  # noqa: E402
from masterproc import Master, master_process  # noqa: E402

TIMEOUT_S = 480
POLL_S = 0.5
GUEST_URL = "http://10.0.2.100"  # what guests reach the master at (guestfwd)
PATHS = {
    "bios": ("BIOS: SeaBIOS, QEMU's iPXE ROM, kernel + initrd over HTTP", {"firmware": "bios"}),
    "uefi": ("UEFI: OVMF, QEMU's iPXE ROM, kernel + initrd over HTTP", {"firmware": "uefi"}),
    "secure-boot": (
        "Secure Boot: OVMF enforcing, shim -> GRUB over TFTP, kernel + initrd over TFTP",
        {"firmware": "secure-boot", "boot_file": SHIM},
    ),
}


def boot_once(master: Master, work: Path, name: str, tree: Path, **spec: Any) -> float | None:
    """Seconds from QEMU's start to the node's first report; None if it did not register."""
    port = int(master.url.rsplit(":", 1)[1])
    tftp = tree if spec.get("firmware") == "secure-boot" else None
    node = VirtualNode(NodeSpec(name=name, master_port=port, **spec), work / name, tftp_root=tftp)
    node.start(max_s=TIMEOUT_S + 30)
    try:
        with master.admin() as client:
            deadline = time.monotonic() + TIMEOUT_S
            while time.monotonic() < deadline and node.running():
                if client.get("/api/v1/nodes", params={"mac": node.spec.mac(0)}).json():
                    return round(time.monotonic() - node.started_at, 1)
                time.sleep(POLL_S)
        return None
    finally:
        node.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path("/var/cache/livestrap-test/e2e-data"))
    parser.add_argument("--runs", type=int, default=2, help="boots per path (median)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="livestrap-bootpaths-") as tmp:
        work = Path(tmp)
        tree = work / "tftp"
        with master_process(args.data_dir, fake_builds=False, public_url=GUEST_URL,
                            database_url=f"sqlite:///{work / 'db.sqlite'}",
                            env={"LIVESTRAP_TFTP_DIR": str(tree)}) as master:  # fmt: skip
            deadline = time.monotonic() + 60
            while not (tree / "grub/grub.cfg").is_file() and time.monotonic() < deadline:
                time.sleep(1)
            runs: dict[str, list[float | None]] = {}
            for i in range(args.runs):  # interleaved: drift in the machine's load hits all
                for path, (_, spec) in PATHS.items():
                    seconds = boot_once(master, work, f"bp-{path}-{i}", tree, **spec)
                    runs.setdefault(path, []).append(seconds)
                    print(path, i, seconds, flush=True)
    save_part("boot_paths", {"accel": accel(), "runs": runs})


def _median(values: list[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return round(statistics.median_low(done), 1) if done else None


def render(r: dict[str, Any]) -> list[str]:
    out = [
        f"## Boot paths: iPXE, Secure Boot, UEFI HTTP boot ({r['accel'].upper()})",
        "",
        machine_line(r.get("machine")),
        "Reproduce: `.venv/bin/python bench/bootpath_bench.py` (as root; one master, the",
        "paths interleaved in one run; QEMU's user-mode networking and TFTP).",
        "",
        "| path | power-on → registered (s) | runs (s) |",
        "|---|---|---|",
    ]
    for path, values in r["runs"].items():
        label = PATHS[path][0] if path in PATHS else path
        cells = ", ".join("✗" if v is None else f"{v:.1f}" for v in values)
        median = _median(values)
        out.append(f"| {label} | {'–' if median is None else f'{median:.1f}'} | {cells} |")
    return [*out, "", *NOTES, ""]


NOTES = [
    "Compare the rows with each other, not with the Boot section: they were measured on",
    "another host on a busier day (other test runs shared the 2 cores during this run).",
    "The Secure Boot chain is slower for two reasons, both outside livestrap's code: OVMF",
    "with SMM (which guards the variable store) runs slower under emulation, and Debian",
    "12's network GRUB has no HTTP, so the kernel and the initrd come over TFTP (one",
    "block per round trip) instead of HTTP. The squashfs and the agent use HTTP on every",
    "path. UEFI HTTP boot (no TFTP at all) is measured in the network-namespace test",
    "`tests/integration/test_netns_http_boot.py`, which runs real dnsmasq; its figure is",
    "in the test's output, not here, because slirp cannot offer the DHCP vendor class",
    "`HTTPClient` that firmware needs for it. Measured there, at a load of ~1.7: 125 s",
    "(OVMF's DHCP and the ipxe.efi download ~9 s, iPXE's second DHCP ~20 s, then the",
    "same Linux part as the other paths).",
]


if __name__ == "__main__":
    main()
