"""Serving benchmark: N clients download root.squashfs at once from the master, from
nginx serving the same files, and from nginx in front of the master
(`livestrap netboot nginx-config`); aggregate MB/s, per-client p50/p99, server CPU.

Uses the active image of DATA_DIR (default: the e2e data dir the tests keep) and writes
the `serving` part of bench/results.json, then re-renders docs/benchmarks.md. Run as root
(it installs Debian's nginx-light if missing, without starting its service):
`.venv/bin/python bench/serve_bench.py [--clients 50,200] [--time-limit 120]`.
`--smoke` uses a small synthetic image and 4 clients.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import fetch_split, percentile  # noqa: E402
from nginxproc import Nginx, nginx_process, static_site  # noqa: E402
from report import MB, Goal, machine_line, save_part  # noqa: E402
from tools import cpu_seconds, ensure_debs  # noqa: E402

from livestrap.netboot.nginx import NginxOptions, render_nginx_config  # noqa: E402
from livestrap.store.images import ImageStore  # noqa: E402
from livestrap.store.manifest import ARTIFACTS, METADATA, Artifact, ImageMetadata  # noqa: E402
from livestrap.store.manifest import dump_metadata as dump_meta  # noqa: E402
from masterproc import NO_LIMITS, Master, free_port, master_process  # noqa: E402

DEFAULT_DATA = Path("/var/cache/livestrap-test/e2e-data")
SERVERS = ("nginx", "master", "nginx-front")
GOAL = 0.8
SMOKE_ID = "smoke-20240501-120000"


def fake_image(data_dir: Path, squashfs_mib: int) -> None:
    """A store with one active image whose squashfs is random bytes (for --smoke)."""
    out = data_dir / "images" / SMOKE_ID
    out.mkdir(parents=True)
    files = {name: os.urandom(4096) for name in ARTIFACTS}
    files["root.squashfs"] = os.urandom(squashfs_mib << 20)
    for name, data in files.items():
        (out / name).write_bytes(data)
    meta = ImageMetadata(
        id=SMOKE_ID, label="smoke", created=datetime.now(UTC).replace(microsecond=0),
        builder="serve_bench", distro="debian", suite="bookworm", arch="amd64", spec={},
        spec_sha256="0" * 64, kernel_version="6.1.0-fake", kernel_cmdline=[], packages={},
        artifacts={n: Artifact(sha256=hashlib.sha256(d).hexdigest(), size=len(d))
                   for n, d in files.items()},
    )  # fmt: skip
    (out / METADATA).write_text(dump_meta(meta))
    ImageStore(data_dir).activate(SMOKE_ID)


def count_ends(master: Master, mac: str) -> int:
    """Complete squashfs-end events the master recorded for one MAC (the timeline check)."""
    from sqlalchemy import select

    from livestrap.master.models import BootEvent

    with master.database().session() as session:
        ends = session.scalars(
            select(BootEvent.detail).where(BootEvent.kind == "squashfs-end", BootEvent.mac == mac)
        ).all()
    return sum(1 for d in ends if d.get("complete"))


def run_one(
    server: str, target: Target, path: str, clients: int, size: int, limit_s: float, procs: int
) -> dict[str, Any]:
    """One load run, with the CPU the server's processes used meanwhile."""
    cpu0 = target.cpu()
    r = fetch_split(procs, "127.0.0.1", target.port, path, clients, limit_s)
    server_cpu = target.cpu() - cpu0
    return {
        "server": server,
        "clients": clients,
        "ok": r.ok,
        "verified_bytes": r.ok * size,
        "mb_s": round(r.bytes / r.wall_s / MB, 1),
        "wall_s": round(r.wall_s, 2),
        "p50_s": _round(percentile(r.seconds, 50)),
        "p99_s": _round(percentile(r.seconds, 99)),
        "first_byte_p99_s": _round(percentile(r.first_byte, 99)),
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(r.client_cpu_s, 2),
        "errors": r.errors[:3],
    }


def _round(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


@dataclass
class Target:
    """One server under test: its port and how much CPU its processes have used."""

    port: int
    cpu: Callable[[], float]


@contextmanager
def servers(data_dir: Path, work: Path) -> Iterator[tuple[Master, dict[str, Target]]]:
    """The master, plain nginx on the same files, and nginx in front of the master."""
    images = ImageStore(data_dir).images_dir.resolve()
    db = f"sqlite:///{work / 'db.sqlite'}"
    with master_process(data_dir, fake_builds=False, database_url=db, env=NO_LIMITS) as master:
        pid = master.proc.pid
        p_plain, p_front = free_port(), free_port()
        opts = NginxOptions(images_dir=str(images), master=master.url,
                            listen=f"127.0.0.1:{p_front}")  # fmt: skip
        with (
            nginx_process(work / "nginx", static_site(p_plain, images), p_plain) as plain,
            nginx_process(work / "front", render_nginx_config(opts), p_front) as front,
        ):
            yield (
                master,
                {
                    "nginx": Target(p_plain, plain.cpu_seconds),
                    "master": Target(int(master.url.rsplit(":", 1)[1]), lambda: cpu_seconds(pid)),
                    "nginx-front": Target(p_front, lambda: front.cpu_seconds() + cpu_seconds(pid)),
                },
            )
            _check_front(front)


def measure(
    data_dir: Path, clients: list[int], limit_s: float, repeat: int = 1, procs: int = 1
) -> dict[str, Any]:
    """Start the three servers, warm the page cache, then run each N on each server
    (`repeat` times; the run with the median throughput counts)."""
    store = ImageStore(data_dir)
    image_id = store.active_id()
    if image_id is None:
        raise SystemExit(f"{data_dir}: no active image")
    size = (store.path(image_id) / "root.squashfs").stat().st_size
    runs: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory(prefix="livestrap-servebench-") as tmp,
        servers(data_dir, Path(tmp)) as (master, targets),
    ):
        for server, t in targets.items():  # warm-up: page cache, connections, imports
            run_one(server, t, _path(server, image_id, "warm"), 2, size, limit_s, procs)
        for n in clients:
            for server, t in targets.items():
                tries = []
                for i in range(repeat):
                    mac = f"02-00-00-{n >> 8:02x}-{n & 255:02x}-{SERVERS.index(server)}{i}"
                    path = _path(server, image_id, mac)
                    run = run_one(server, t, path, n, size, limit_s, procs)
                    if server != "nginx":
                        run["timeline_complete_ends"] = _ends(master, mac)
                    tries.append(run)
                run = sorted(tries, key=lambda t: t["mb_s"])[len(tries) // 2]
                runs.append(run)
                print(_line(run), flush=True)
        rss = _peak_rss_mb(master.proc.pid)
    return {
        "image_id": image_id,
        "squashfs_bytes": size,
        "time_limit_s": limit_s,
        "repeat": repeat,
        "client_procs": procs,
        "runs": runs,
        "master_peak_rss_mb": rss,
        "ratios": ratios(runs),
    }


def _path(server: str, image_id: str, mac: str) -> str:
    if server == "nginx":
        return f"/boot/images/{image_id}/root.squashfs"
    return f"/boot/m/{mac}/images/{image_id}/root.squashfs"


def _ends(master: Master, mac: str) -> int:
    """The master writes the end events after the last byte: give it a moment."""
    deadline = time.monotonic() + 10
    count = count_ends(master, mac.replace("-", ":"))
    while time.monotonic() < deadline:
        time.sleep(0.5)
        again = count_ends(master, mac.replace("-", ":"))
        if again == count:
            break
        count = again
    return count


def _check_front(front: Nginx) -> None:
    errors = [ln for ln in front.error_log.read_text().splitlines() if "[error]" in ln]
    if errors:
        print(f"nginx in front logged {len(errors)} error(s), e.g. {errors[0]}", flush=True)


def _peak_rss_mb(pid: int) -> float | None:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _line(run: dict[str, Any]) -> str:
    return (f"{run['server']:>11} N={run['clients']:<4} {run['ok']}/{run['clients']} ok "
            f"{run['mb_s']:8.1f} MB/s p50 {run['p50_s']} s p99 {run['p99_s']} s "
            f"head p99 {run['first_byte_p99_s']} s "
            f"server CPU {run['server_cpu_s']} s client CPU {run['client_cpu_s']} s "
            f"wall {run['wall_s']} s {run['errors'][:1]}")  # fmt: skip


def ratios(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Throughput relative to plain nginx, per N: {'master': {'50': 0.3}, ...}."""
    base = {r["clients"]: r["mb_s"] for r in runs if r["server"] == "nginx"}
    out: dict[str, dict[str, float | None]] = {}
    for r in runs:
        if r["server"] != "nginx":
            b = base.get(r["clients"])
            ratio = round(r["mb_s"] / b, 2) if b and r["ok"] == r["clients"] else None
            out.setdefault(r["server"], {})[str(r["clients"])] = ratio
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny image, 4 clients, seconds")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--clients", default="50,200", help="concurrent clients per run")
    parser.add_argument("--time-limit", type=float, default=120, help="seconds per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per cell; the median counts")
    parser.add_argument("--client-procs", type=int, default=1,
                        help="load generator processes (is one the limit?)")  # fmt: skip
    args = parser.parse_args()
    ensure_debs({"nginx-light": "nginx"})
    clients = [int(c) for c in args.clients.split(",")]
    if args.smoke:
        with tempfile.TemporaryDirectory(prefix="livestrap-servesmoke-") as tmp:
            Path(tmp).chmod(0o755)  # nginx's workers run as nobody
            fake_image(Path(tmp) / "data", squashfs_mib=8)
            part = measure(Path(tmp) / "data", [4], min(args.time_limit, 30))
    else:
        part = measure(args.data_dir, clients, args.time_limit, args.repeat, args.client_procs)
    part["smoke"] = args.smoke
    failed = [r for r in part["runs"] if r["ok"] != r["clients"]]
    save_part("serving", part)
    if failed:
        raise SystemExit(f"{len(failed)} run(s) had failed downloads: {failed[0]['errors']}")


def render(part: dict[str, Any]) -> list[str]:
    """The `## Serving` section of docs/benchmarks.md."""
    runs = part["runs"]
    mib = part["squashfs_bytes"] / MB
    out = [
        "## Serving: N clients download root.squashfs at once",
        "",
        machine_line(part.get("machine")),
        "Reproduce: `.venv/bin/python bench/serve_bench.py [--clients 50,200]` (as root;",
        f"installs Debian's nginx-light). Every server on 127.0.0.1; the squashfs is {mib:.1f} MB,",
        "every download checked by status and byte count; each run is cut after "
        f"{part['time_limit_s']:.0f} s.",
        "`nginx`: Debian's nginx serving the same files (sendfile, 2 workers); `master`: the",
        "master alone (uvicorn); `nginx-front`: `livestrap netboot nginx-config` in front of",
        "the master (the master answers each request and writes the timeline, nginx sends",
        "the file). Server CPU: all its processes (nginx-front: nginx + the master).",
        "",
        "| N | server | MB/s | × nginx | p50 (s) | p99 (s) | first byte p99 (s) | "
        "server CPU (s) | CPU s/GB | client CPU (s) | downloads ok | timeline ends |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rat = part.get("ratios", {})
    for r in runs:
        ratio = "1" if r["server"] == "nginx" else rat.get(r["server"], {}).get(str(r["clients"]))
        gb = r["verified_bytes"] / 1e9 or 1
        ends = r.get("timeline_complete_ends", "–")
        out.append(
            f"| {r['clients']} | {r['server']} | {r['mb_s']:.0f} | {ratio or '–'} | "
            f"{r['p50_s']} | {r['p99_s']} | {r.get('first_byte_p99_s', '–')} | "
            f"{r['server_cpu_s']} | "
            f"{r['server_cpu_s'] / gb:.2f} | {r['client_cpu_s']} | "
            f"{r['ok']}/{r['clients']} | {ends} |"
        )
    out += ["", *finding(part), "", *generator_note(runs), ""]
    return out


def generator_note(runs: list[dict[str, Any]]) -> list[str]:
    """How we know whether the load generator limited a run."""
    busiest = max(runs, key=lambda r: r["client_cpu_s"] / max(r["wall_s"], 1e-9))
    share = busiest["client_cpu_s"] / max(busiest["wall_s"], 1e-9)
    verdict = (
        "well below one core, so it did not limit any run"
        if share < 0.7
        else "close to one core: on 2 cores shared by server and client, that run measures "
        "the machine as much as the server"
    )
    return [
        "The load generator (bench/loadgen.py) is one process: an epoll loop over raw",
        "HTTP/1.1 sockets that receives bodies with MSG_TRUNC (the kernel counts and drops",
        f"the bytes). Its busiest run ({busiest['server']}, N = {busiest['clients']}) used "
        f"{share:.0%} of one core, {verdict}. `--client-procs 2` splits it into two",
        "processes as a cross-check.",
    ]


def _ratios(part: dict[str, Any], server: str) -> list[float | None]:
    return list(part.get("ratios", {}).get(server, {}).values())


def _worst(part: dict[str, Any], server: str) -> float | None:
    """The lowest ratio to nginx over all N (None if any run failed or none ran)."""
    values = _ratios(part, server)
    if not values or any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)


def goals(part: dict[str, Any]) -> list[Goal]:
    """The serving goal, for the page's table of goals."""
    ns = "/".join(str(n) for n in part.get("ratios", {}).get("master", {}))
    out: list[Goal] = []
    for server, what in (("master", "master alone"),
                         ("nginx-front", "nginx in front (netboot nginx-config)")):  # fmt: skip
        got = " / ".join("failed" if v is None else f"{v}" for v in _ratios(part, server))
        worst = _worst(part, server)
        out.append((f"serving {ns} clients: {what}", f"≥ {GOAL} × nginx", f"{got} × nginx",
                    None if worst is None else worst >= GOAL))  # fmt: skip
    return out


def finding(part: dict[str, Any]) -> list[str]:
    """Goal, verdict from the figures, and the cause of the gap (profiled)."""

    def verdict(ratio: float | None) -> str:
        return "met" if ratio is not None and ratio >= GOAL else "missed"

    master, front = _worst(part, "master"), _worst(part, "nginx-front")
    return [
        f"Goal: serving ≥ {GOAL} × nginx, or nginx in front (and say so). The master alone "
        f"reaches {master} × nginx at worst: **goal {verdict(master)} by the master alone**; "
        f"with nginx in front it reaches {front} × nginx: **goal {verdict(front)} with nginx "
        "in front**.",
        "",
        *CAUSE,
    ]


CAUSE = [
    "Why the master alone stays below nginx (profiled with py-spy under this load): nginx",
    "hands page-cache pages to the socket (sendfile): no copy through user space. Under",
    "uvicorn an ASGI body is bytes: every chunk is read into Python (pread in a worker",
    "thread) and written with send() from the event loop, two copies plus the Python work",
    "per chunk, and the loop's thread is the limit (about one core). uvicorn 0.54 has no",
    "zero-copy path (`http.response.pathsend`/`zerocopysend` are not implemented, and the",
    "transport is not reachable from the application through any API); uvloop + httptools",
    "made no measurable difference (same MB/s and CPU/GB: the time is in the copies and",
    "system calls, not in the loop). The cheap wins in our own code: 1 MiB chunks instead",
    "of Starlette's 64 KiB (about 490 → 1,300-1,600 MB/s for the master alone at N = 50",
    "here; far fewer thread hops and loop rounds), and image metadata parsed once per",
    "version of metadata.yaml instead of on every request (~11 ms of YAML each, which had",
    "made the master the bottleneck of nginx in front). The measured limit of the master",
    "alone is the figure in the table. For fleets booting at once, put nginx in front:",
    "`livestrap netboot nginx-config` (README, Network boot).",
    "",
    "What nginx in front still pays: every download's first byte waits for the master's",
    "answer (validation, the X-Accel-Redirect; the start event is written after it), and",
    "every squashfs end is one more request (post_action). That is ~1.3 ms of Python CPU",
    "per request, serialized by the GIL: with 200 requests at once, the first-byte p99",
    "column shows the queue, and on 2 cores the master's CPU competes with nginx's. The",
    "bytes themselves go the same way as plain nginx (strace: sendfile in both).",
    "Not explained yet: at N = 200 the first-byte queue (p99 ~0.45 s) accounts for only",
    "part of the gap to plain nginx (p50 4.4 s vs 1.6 s). In that run the load generator",
    "itself used more than twice the CPU it used against plain nginx for the same bytes,",
    "and the master's CPU came on top, so on 2 cores the run is CPU-bound on the client",
    "side; a machine with cores to spare (or the load generator on another host) is",
    "needed to tell whether nginx in front reaches 0.8 × there. At N = 50 it does.",
]


if __name__ == "__main__":
    main()
