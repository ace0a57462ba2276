"""The load generator for the discovery benchmark: one asyncio loop, one tiny HTTP/1.1
client, one connection per report (the agent's urllib opens a new one every time).

Why hand-written: on 2 cores the generator shares the CPU with the master, so it must
cost little (its own CPU is measured and reported). Burst phases are closed-loop (a
fixed number of reports in flight, as fast as the master answers); the steady state is
open-loop (each node reports on its own clock whatever the master's latency, so slow
answers show up as latency instead of as fewer requests).
"""

from __future__ import annotations

import asyncio
import heapq
import random
import resource
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from discovery_agents import SimAgent

TIMEOUT_S = 30.0
RETRIES = 3


class _Exchange(asyncio.Protocol):
    """One request and its answer on a fresh connection (Connection: close)."""

    def __init__(self, request: bytes, done: asyncio.Future[tuple[int, bytes]]) -> None:
        self.request = request
        self.done = done
        self.buf = bytearray()
        self.status = 0
        self.start = -1  # body offset once the head is in
        self.end = -1
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self.start < 0:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = bytes(self.buf[:head_end]).decode("latin-1")
            self.status = int(head[9:12])
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            self.start, self.end = head_end + 4, head_end + 4 + length
        if len(self.buf) >= self.end and not self.done.done():
            self.done.set_result((self.status, bytes(self.buf[self.start : self.end])))
            assert self.transport is not None
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(ConnectionError(f"connection lost: {exc}"))


class Client:
    """POSTs discovery reports to the master on 127.0.0.1."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.head = (
            f"POST /api/v1/discovery HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            "User-Agent: livestrap-agent/bench\r\nConnection: close\r\n"
        ).encode()

    async def post(self, body: bytes) -> tuple[int, bytes]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        request = self.head + b"Content-Length: %d\r\n\r\n" % len(body) + body
        transport, _ = await loop.create_connection(
            lambda: _Exchange(request, done), "127.0.0.1", self.port
        )
        try:
            async with asyncio.timeout(TIMEOUT_S):
                return await done
        finally:
            transport.close()


@dataclass
class Phase:
    """Latencies and outcomes of one phase; `summary()` is what the report keeps."""

    name: str
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    wall_s: float = 0.0
    client_cpu_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)
        ok = sum(n for s, n in self.statuses.items() if s in (200, 201))

        def pct(p: float) -> float | None:
            return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

        return {
            "requests": len(lat),
            "ok": ok,
            "wall_s": round(self.wall_s, 2),
            "per_s": round(ok / self.wall_s, 1) if self.wall_s else None,
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "max_ms": round(lat[-1] * 1000, 1) if lat else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors),
            "client_cpu_s": round(self.client_cpu_s, 2),
            **self.extra,
        }


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def timed(client: Client, body: bytes, phase: Phase) -> tuple[int, bytes] | None:
    """One report; its latency and status (or error) go into `phase`."""
    t0 = time.perf_counter()
    try:
        status, answer = await client.post(body)
    except (OSError, TimeoutError) as exc:
        phase.errors[type(exc).__name__] += 1
        return None
    phase.latencies.append(time.perf_counter() - t0)
    phase.statuses[status] += 1
    return status, answer


async def burst(
    name: str,
    agents: list[SimAgent],
    step: Callable[[SimAgent, Phase], Awaitable[bool]],
    concurrency: int,
    deadline: float,
) -> Phase:
    """Run `step` once for every agent, `concurrency` at a time; a failed step is retried
    (like the agent's backoff, but short) while the deadline allows."""
    phase = Phase(name)
    queue = iter(agents)
    unfinished: list[int] = []

    async def worker() -> None:
        for agent in queue:
            for attempt in range(RETRIES + 1):
                if time.monotonic() > deadline:
                    unfinished.append(agent.index)
                    break
                if await step(agent, phase):
                    break
                await asyncio.sleep(random.uniform(0, 0.5 * 2**attempt))
            else:
                unfinished.append(agent.index)

    cpu0, t0 = own_cpu_s(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    phase.wall_s, phase.client_cpu_s = time.perf_counter() - t0, own_cpu_s() - cpu0
    phase.extra["unfinished"] = len(unfinished)
    return phase


async def steady(
    client: Client, agents: list[SimAgent], interval_s: float, duration_s: float
) -> Phase:
    """Every agent heartbeats every interval_s ±20 % (agent.report's jitter), starting at
    a random point of its first interval; runs for duration_s, then drains for ≤ 30 s."""
    phase = Phase("steady")
    rng = random.Random(7)
    start = time.monotonic()
    due = [(start + rng.uniform(0, interval_s), a.index) for a in agents]
    heapq.heapify(due)
    by_index = {a.index: a for a in agents}
    tasks: set[asyncio.Task[Any]] = set()
    cpu0, t0 = own_cpu_s(), time.perf_counter()
    while due and due[0][0] < start + duration_s:
        at, index = heapq.heappop(due)
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        agent = by_index[index]
        body = agent.heartbeat_body(int(time.monotonic() - start))
        task = asyncio.create_task(timed(client, body, phase))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        heapq.heappush(due, (at + interval_s * rng.uniform(0.8, 1.2), index))
    sent_wall = time.perf_counter() - t0
    if tasks:
        await asyncio.wait(tasks, timeout=TIMEOUT_S)
    phase.wall_s, phase.client_cpu_s = sent_wall, own_cpu_s() - cpu0
    phase.extra["offered_per_s"] = round(len(agents) / interval_s, 1)
    return phase
