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
from serve_notes import GOAL, PEERS, finding, worst  # noqa: E402
from tools import cpu_seconds, ensure_debs  # noqa: E402

from livestrap.netboot.nginx import NginxOptions, render_nginx_config  # noqa: E402
from livestrap.netboot.rackcache import RackOptions, render_rack_config  # noqa: E402
from livestrap.store.images import ImageStore  # noqa: E402
from livestrap.store.manifest import ARTIFACTS, METADATA, Artifact, ImageMetadata  # noqa: E402
from livestrap.store.manifest import dump_metadata as dump_meta  # noqa: E402
from masterproc import NO_LIMITS, Master, free_port, master_process, scrape  # noqa: E402

DEFAULT_DATA = Path("/var/cache/livestrap-test/e2e-data")
SERVERS = ("nginx", "master", "nginx-front", "nginx-direct", "rack-cache")
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
    """The master, plain nginx on the same files, nginx in front of the master (both
    modes), and a rack cache in front of the master (its cache on this disk)."""
    images = ImageStore(data_dir).images_dir.resolve()
    db = f"sqlite:///{work / 'db.sqlite'}"
    work.chmod(0o755)  # nginx's workers run as nobody
    if not data_dir.stat().st_mode & 0o001:  # as the README says for nginx: o+x on the data dir
        print(f"{data_dir}: chmod o+x, so nginx's workers can reach images/", flush=True)
        data_dir.chmod(data_dir.stat().st_mode | 0o001)
    cache = work / "rack-cache"
    cache.mkdir(mode=0o777)
    cache.chmod(0o777)
    with master_process(data_dir, fake_builds=False, database_url=db, env=NO_LIMITS) as master:
        pid = master.proc.pid
        p_plain, p_front, p_direct, p_rack = (free_port() for _ in range(4))
        front_opts, direct_opts = (
            NginxOptions(images_dir=str(images), master=master.url,
                         listen=f"127.0.0.1:{port}", direct=direct)
            for port, direct in ((p_front, False), (p_direct, True))
        )  # fmt: skip
        rack_opts = RackOptions(
            masters=(master.url,), listen=f"127.0.0.1:{p_rack}", cache_dir=str(cache), node_rate=0
        )  # every client: 127.0.0.1
        with (
            nginx_process(work / "nginx", static_site(p_plain, images), p_plain) as plain,
            nginx_process(work / "front", render_nginx_config(front_opts), p_front) as front,
            nginx_process(work / "direct", render_nginx_config(direct_opts), p_direct) as direct,
            nginx_process(work / "rack", render_rack_config(rack_opts), p_rack) as rack,
        ):

            def with_master(n: Nginx) -> Callable[[], float]:
                return lambda: n.cpu_seconds() + cpu_seconds(pid)

            yield (
                master,
                {
                    "nginx": Target(p_plain, plain.cpu_seconds),
                    "master": Target(int(master.url.rsplit(":", 1)[1]), lambda: cpu_seconds(pid)),
                    "nginx-front": Target(p_front, with_master(front)),
                    "nginx-direct": Target(p_direct, with_master(direct)),
                    "rack-cache": Target(p_rack, with_master(rack)),
                },
            )
            for n in (front, direct, rack):
                _check_front(n)


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
    extra: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="livestrap-servebench-") as tmp,
        servers(data_dir, Path(tmp)) as (master, targets),
    ):
        for server, t in targets.items():  # warm-up: page cache, connections, imports
            if server != "rack-cache":  # its first storm is the cold one (upstream bytes)
                run_one(server, t, _path(server, image_id, "warm"), 2, size, limit_s, procs)
        for n in clients:
            for server, t in targets.items():
                tries = []
                for i in range(repeat):
                    mac = f"02-00-00-{n >> 8:02x}-{n & 255:02x}-{SERVERS.index(server)}{i}"
                    path = _path(server, image_id, mac)
                    up = upstream_bytes(master)
                    run = run_one(server, t, path, n, size, limit_s, procs)
                    if server != "nginx":
                        run["timeline_complete_ends"] = _ends(master, mac)
                        run["upstream_bytes"] = upstream_bytes(master) - up
                    tries.append(run)
                    if server == "rack-cache" and "rack_cold" not in extra:
                        extra["rack_cold"] = run  # the cache's first storm: it starts empty
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
        **extra,
    }


def upstream_bytes(master: Master) -> int:
    """Squashfs bytes that left the masters' side so far: what the master sent (to nodes,
    or to a rack cache filling itself) and what nginx in front sent for it; not what a
    rack cache sent from its disk (via="rack")."""
    samples = scrape(master)
    name, file = "livestrap_boot_file_bytes_total", ("artifact", "root.squashfs")
    return int(sum(samples[(name, (file, ("via", via)))] for via in ("master", "nginx")))


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
        "the file); `nginx-direct`: the same with `--direct` (nginx sends at once and reports",
        "the whole transfer afterwards); `rack-cache`: `livestrap netboot rack-config` in",
        "front of the master (its cache on this disk; its first storm, at the first N, starts",
        "cold). Server CPU: all its processes (nginx + the master). Upstream: squashfs bytes",
        "that left the masters' side during the run (the master's metrics): what a rack",
        "would pull over its uplink.",
        "",
        "| N | server | MB/s | × nginx | p50 (s) | p99 (s) | first byte p99 (s) | "
        "server CPU (s) | CPU s/GB | client CPU (s) | downloads ok | timeline ends | "
        "upstream MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rat = part.get("ratios", {})
    for r in runs:
        ratio = "1" if r["server"] == "nginx" else rat.get(r["server"], {}).get(str(r["clients"]))
        gb = r["verified_bytes"] / 1e9 or 1
        ends = r.get("timeline_complete_ends", "–")
        up = r.get("upstream_bytes")
        upstream = "–" if up is None else f"{up / MB:.0f}"
        out.append(
            f"| {r['clients']} | {r['server']} | {r['mb_s']:.0f} | {ratio or '–'} | "
            f"{r['p50_s']} | {r['p99_s']} | {r.get('first_byte_p99_s', '–')} | "
            f"{r['server_cpu_s']} | "
            f"{r['server_cpu_s'] / gb:.2f} | {r['client_cpu_s']} | "
            f"{r['ok']}/{r['clients']} | {ends} | {upstream} |"
        )
    out += ["", *upstream_note(part), "", *finding(part), "", *generator_note(runs), ""]
    return out


def upstream_note(part: dict[str, Any]) -> list[str]:
    """Upstream bytes per boot storm, with and without a rack cache."""
    cold = part.get("rack_cold")
    plain = next((r for r in part["runs"] if r["server"] == "nginx-front"), None)
    if cold is None or plain is None or cold.get("upstream_bytes") is None:
        return []
    warm = [r["upstream_bytes"] for r in part["runs"] if r["server"] == "rack-cache"]
    return [
        f"Upstream bytes per boot storm: without a cache every download crosses from the "
        f"masters ({plain['upstream_bytes'] / MB:.0f} MB for {plain['clients']} nodes with "
        f"nginx in front); through a rack cache, its first storm ({cold['clients']} nodes, "
        f"cache empty) pulled {cold['upstream_bytes'] / MB:.0f} MB, one squashfs "
        f"({part['squashfs_bytes'] / MB:.0f} MB), at {cold['mb_s']:.0f} MB/s to the nodes; "
        f"the storms after it pulled {sum(warm) / MB:.0f} MB in all.",
    ]


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


def goals(part: dict[str, Any]) -> list[Goal]:
    """The serving goal, for the page's table of goals."""
    ns = "/".join(str(n) for n in part.get("ratios", {}).get("master", {}))
    out: list[Goal] = []
    for server, what in PEERS:
        if server not in part.get("ratios", {}):
            continue
        values = part["ratios"][server].values()
        got = " / ".join("failed" if v is None else f"{v}" for v in values)
        low = worst(part, server)
        out.append((f"serving {ns} clients: {what}", f"≥ {GOAL} × nginx", f"{got} × nginx",
                    None if low is None else low >= GOAL))  # fmt: skip
    return out


if __name__ == "__main__":
    main()
