"""The prose of docs/benchmarks.md's Serving section: the verdict on the goal from the
figures, and what was profiled (bench/serve_bench.py renders the table)."""

from __future__ import annotations

from typing import Any

GOAL = 0.8
PEERS = (("master", "the master alone"), ("nginx-front", "nginx in front"),
         ("nginx-direct", "nginx in front, --direct"), ("rack-cache", "a rack cache"))  # fmt: skip


def worst(part: dict[str, Any], server: str) -> float | None:
    """The lowest ratio to nginx over all N (None if any run failed or none ran)."""
    values = list(part.get("ratios", {}).get(server, {}).values())
    if not values or any(v is None for v in values):
        return None
    return min(v for v in values if v is not None)


def finding(part: dict[str, Any]) -> list[str]:
    """Goal, verdict from the figures, and the cause of the gap (profiled)."""

    def verdict(ratio: float | None) -> str:
        return "met" if ratio is not None and ratio >= GOAL else "missed"

    said = [f"{what}: {worst(part, server)} × nginx, goal **{verdict(worst(part, server))}**"
            for server, what in PEERS if server in part.get("ratios", {})]  # fmt: skip
    return [
        f"Goal: serving ≥ {GOAL} × nginx, or nginx in front (and say so). The lowest ratio"
        " over all N: " + "; ".join(said) + ".",
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
    "",
    "`nginx-direct` and `rack-cache` take the master out of each download's path: nginx",
    "sends from its disk (or its cache) at once, and post_action reports the whole",
    "transfer afterwards, which nothing waits for. The master's share is then one short",
    "request per download after the fact. The rack cache's cold storm makes one upstream",
    "fetch per cache (the upstream column; `proxy_cache_lock`), its warm storms none.",
]
