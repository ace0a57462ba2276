"""Console benchmark: 10,000 nodes in the database (rows inserted directly, each with the
facts of a 2-socket server and one whole boot on its timeline), then the server time of
the nodes list (first page, and a filtered search) and of one node page: the master's
ASGI app called in-process (httpx.ASGITransport: session check, queries, template; no
socket, no HTTP parsing), median and p99 over N requests each. Then the same pages from
a logged-in client of the real master under uvicorn (loopback HTTP), for comparison.
Also the SQL behind a vendor search, with the vendor in its own column (migration 0003)
and parsed out of the facts JSON.

Writes the `console` part of bench/results.json and re-renders docs/benchmarks.md.
`.venv/bin/python bench/console_bench.py [--nodes 10000] [--requests 200] [--smoke]`.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from report import Goal, machine_line, save_part  # noqa: E402

from asgi import master_app  # noqa: E402
from consoleclient import CSRF, browser, log_in  # noqa: E402
from fleet import machine_facts  # noqa: E402
from livestrap.master.db import Database  # noqa: E402
from masterproc import NO_LIMITS, master_process  # noqa: E402

COMMAND = ".venv/bin/python bench/console_bench.py"
GOAL_MS = 100.0
BATCH = 1000
BOOT = (("script", 0.0), ("kernel", 0.4), ("initrd", 2.1), ("squashfs-start", 9.0),
        ("squashfs-end", 31.0), ("report", 44.0))  # fmt: skip
PAGES = {
    "list": "/ui/nodes",
    "search": "/ui/nodes?status=online&vendor=supermicro&q=SN00",
    "node": "",  # filled with a node in the middle
}


def fill(db: Database, n: int) -> str:
    """n nodes, their MACs and one boot each; the id of the middle one."""
    from sqlalchemy import insert

    from livestrap.master.models import BootEvent, Node, NodeMac, search_fields

    now = time.time()
    middle = ""
    if n:
        for start in range(0, n, BATCH):
            nodes, macs, events = [], [], []
            for i in range(start, min(n, start + BATCH)):
                facts = machine_facts(i)
                node_id = f"{i:08x}-0000-4000-8000-{i:012x}"
                middle = node_id if i == n // 2 else middle
                vendor, product, serial = search_fields(facts)
                seen = now - (i % 3) * 3600  # a third online
                boot_mac = facts["nics"][0]["mac"]
                ip = f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}"
                nodes.append(dict(id=node_id, system_uuid=facts["system"]["uuid"],
                                  boot_mac=boot_mac, last_ip=ip,
                                  image_id="img-1", agent_version="0.1.0", facts=facts,
                                  facts_hash=None, failures=[], heartbeat_s=30,
                                  first_seen_at=now - 86400 + i, last_seen_at=seen, boots=1,
                                  vendor=vendor, product=product, serial=serial))  # fmt: skip
                macs += [{"mac": nic["mac"], "node_id": node_id} for nic in facts["nics"]]
                events += [dict(at=seen - 60 + dt, kind=kind, mac=boot_mac, ip=None,
                                node_id=node_id, image_id="img-1", detail={})
                           for kind, dt in BOOT]  # fmt: skip
            with db.session() as s:
                s.execute(insert(Node), nodes)
                s.execute(insert(NodeMac), macs)
                s.execute(insert(BootEvent), events)
    return middle


def summary(samples: list[float], count: int) -> dict[str, float]:
    samples = sorted(samples)
    p99 = samples[min(len(samples) - 1, round(0.99 * (len(samples) - 1)))]
    return {"median_ms": round(statistics.median(samples), 1), "p99_ms": round(p99, 1),
            "max_ms": round(samples[-1], 1), "requests": count}  # fmt: skip


def timed(get: Callable[[], Any], count: int) -> dict[str, float]:
    """Median, p99 and max of `count` calls, in ms, after a few warm-up calls."""
    for _ in range(3):
        get()
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        get()
        samples.append((time.perf_counter() - t0) * 1000)
    return summary(samples, count)


async def timed_async(get: Callable[[], Awaitable[Any]], count: int) -> dict[str, float]:
    """timed() for an in-process (async) client."""
    for _ in range(3):
        await get()
    samples = []
    for _ in range(count):
        t0 = time.perf_counter()
        await get()
        samples.append((time.perf_counter() - t0) * 1000)
    return summary(samples, count)


def check(name: str, answer: Any) -> None:
    marker = 'id="timeline"' if name == "node" else '<tr class="node">'
    assert answer.status_code == 200 and marker in answer.text, (name, answer.status_code)


async def server_times(app: Any, token: str, pages: dict[str, str], count: int) -> dict[str, Any]:
    """The pages from the ASGI app itself, logged in: the server's time, no socket."""
    import httpx

    out: dict[str, Any] = {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        login = await client.post("/ui/login", data={"token": token})
        assert login.status_code == 303 and CSRF.search((await client.get("/ui/")).text)
        for name, path in pages.items():
            check(name, await client.get(path))
            out[name] = await timed_async(lambda p=path: client.get(p), count) | {"path": path}
            print("server", name, out[name], flush=True)
    return out


def sql_search(db: Database, count: int) -> dict[str, Any]:
    """The vendor filter as SQL: the column against json_extract over every node."""
    from sqlalchemy import func, select

    from livestrap.master.models import Node

    by = {
        "column": select(func.count()).where(Node.vendor.icontains("supermicro")),
        "json": select(func.count()).where(
            Node.facts[("system", "vendor")].as_string().icontains("supermicro")
        ),
    }
    with db.session() as s:
        return {name: timed(lambda q=q: s.scalar(q), count) for name, q in by.items()}


def measure(nodes: int, requests: int) -> dict[str, Any]:
    """Fill and time in-process (the server's time), then the client's over loopback."""
    with tempfile.TemporaryDirectory(prefix="livestrap-consolebench-") as tmp:
        url, data_dir = f"sqlite:///{tmp}/livestrap.db", Path(tmp) / "data"
        out: dict[str, Any] = {"nodes": nodes, "backend": "sqlite", "timing": "in-process"}
        with master_app(data_dir, database_url=url) as (app, state):
            t0 = time.monotonic()
            pages = dict(PAGES, node=f"/ui/nodes/{fill(state.db, nodes)}")
            out["fill_s"] = round(time.monotonic() - t0, 1)
            out |= asyncio.run(server_times(app, state.admin_token, pages, requests))
            out["sql_vendor_search"] = sql_search(state.db, min(requests, 50))
            print("sql", out["sql_vendor_search"], flush=True)
        out["client"] = {}
        with master_process(data_dir, database_url=url, env=NO_LIMITS) as m, browser(m) as client:
            log_in(client, m)
            for name, path in pages.items():
                check(name, client.get(path))
                out["client"][name] = timed(lambda p=path: client.get(p), requests)
                print("client", name, out["client"][name], flush=True)
    return out


TITLES = {"list": "nodes list, first page", "search": "nodes list, filtered search",
          "node": "node page"}  # fmt: skip


def goals(part: dict[str, Any]) -> list[Goal]:
    n = part["nodes"]
    return [
        (f"render the {TITLES[k]} ({n:,} nodes)", "median and p99 < 100 ms",
         f"{part[k]['median_ms']} / {part[k]['p99_ms']} ms",
         part[k]["median_ms"] < GOAL_MS and part[k]["p99_ms"] < GOAL_MS)
        for k in ("list", "search", "node")
    ]  # fmt: skip


def render(part: dict[str, Any]) -> list[str]:
    sql = part.get("sql_vendor_search", {})
    server = part.get("timing") == "in-process"  # older runs timed the client only
    out = [
        "## Web console",
        "",
        machine_line(part.get("machine")),
        f"Reproduce: `{COMMAND}` (SQLite).",
        f"{part['nodes']:,} nodes are inserted directly (in {part['fill_s']} s): each with the",
        "facts of a 2-socket server (2 NICs with LLDP, 2 disks, 8 DIMMs, 12 PCI devices) and",
        "one whole boot (6 events) on its timeline; a third of them online.",
    ]
    if server:
        out += [
            "**Server time** is the master's ASGI app called in-process with a logged-in",
            "session (httpx.ASGITransport): session check, queries, template, no socket. The",
            "**client** columns are a logged-in client of the real master under uvicorn, over",
            "loopback HTTP: the same plus HTTP, the event loop and the wait for a core.",
        ]
    else:
        out += [
            "Times are a logged-in client's, over loopback HTTP (the whole request: session",
            "check, queries, template, HTTP); not yet measured as server time.",
        ]
    out.append("")
    if part.get("smoke"):
        out += ["*Smoke run (tiny sizes): the figures say nothing about speed.*", ""]
    if server:
        out += ["| page | URL | server median | server p99 | server max | client median "
                "| client p99 | requests |", "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    else:
        out += ["| page | URL | median | p99 | max | requests |", "|---|---|---|---|---|---|"]
    for key, title in TITLES.items():
        r = part[key]
        path = r["path"] if key != "node" else "/ui/nodes/ID"
        row = f"| {title} | `{path}` | {r['median_ms']} ms | {r['p99_ms']} ms | {r['max_ms']} ms |"
        if server:
            c = part["client"][key]
            row += f" {c['median_ms']} ms | {c['p99_ms']} ms |"
        out.append(f"{row} {r['requests']} |")
    missed = [TITLES[k] for k in TITLES if part[k]["p99_ms"] >= GOAL_MS]
    load = (part.get("machine") or {}).get("load_1min")
    if missed and not part.get("smoke"):
        out += [
            "",
            f"**Goal not met**: the {'server' if server else 'client'} p99 of the "
            f"{' and '.join(missed)} is over 100 ms (load average {load} when saved).",
        ]
    if sql:
        out += [
            "",
            "Why vendor, product and serial have their own columns: counting the nodes whose",
            f"vendor contains `supermicro` takes {sql['column']['median_ms']} ms (median) on the",
            f"column and {sql['json']['median_ms']} ms parsing every node's facts JSON.",
            "The list page runs its filter twice: once for the page (LIMIT 51 along the",
            "index) and once for the total shown above it (a count over every match).",
        ]
    return [*out, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200, help="per page")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, for CI")
    args = parser.parse_args()
    if args.smoke:
        args.nodes, args.requests = 60, 10
    part = measure(args.nodes, args.requests) | {"smoke": args.smoke}
    save_part("console", part)


if __name__ == "__main__":
    main()
