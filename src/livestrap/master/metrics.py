"""/metrics: the master's Prometheus metrics, in a registry of its own per app (tests make
many apps in one process; the global registry would refuse the second).

Counted in this process: discovery reports and heartbeats, refused reports by reason,
the bytes of boot files sent (by the master itself, or by nginx as it reports back),
and HTTP latency (master.httpmetrics). Read from the database at each scrape, since the
builder may be another process and counts must survive a restart: nodes by status, and
builds by outcome with their durations.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from livestrap.master.db import Database
from livestrap.master.models import Build, Node
from livestrap.store.manifest import ARTIFACTS

# the reasons a discovery report is refused (a fixed set: label values stay bounded)
REFUSED_REASONS: Final = ("no token", "wrong token", "rate limited", "new-node quota", "rebooted")
BUILD_BUCKETS: Final = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0, 7200.0)
HTTP_BUCKETS: Final = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    300.0,
)
FINISHED_STATES: Final = ("succeeded", "failed", "cancelled", "interrupted")


class InventoryCollector(Collector):
    """Nodes by status and builds by state, from the database at scrape time."""

    def __init__(self, db: Database, offline_after: int) -> None:
        self.db = db
        self.offline_after = offline_after

    def describe(self) -> Iterator[Metric]:
        """Nothing up front: registering must not query a database not yet migrated."""
        return iter(())

    def collect(self) -> Iterator[Metric]:
        now = time.time()
        with self.db.session() as session:
            cutoff = now - Node.heartbeat_s * self.offline_after
            online = session.scalar(select(func.count()).where(Node.last_seen_at >= cutoff)) or 0
            total = session.scalar(select(func.count()).select_from(Node)) or 0
            by_state = select(Build.state, func.count()).group_by(Build.state)
            states: dict[str, int] = {state: n for state, n in session.execute(by_state)}
            ran = select(Build.state, Build.finished_at - Build.started_at).where(
                Build.state.in_(FINISHED_STATES),
                Build.started_at.is_not(None),
                Build.finished_at.is_not(None),
            )
            durations = [(state, seconds) for state, seconds in session.execute(ran)]
        nodes = GaugeMetricFamily(
            "livestrap_nodes",
            "Nodes by status (online: heard from within offline_after heartbeats).",
            labels=["status"],
        )
        nodes.add_metric(["online"], online)
        nodes.add_metric(["offline"], total - online)
        yield nodes
        builds = GaugeMetricFamily(
            "livestrap_builds", "Builds in the database by state.", labels=["state"]
        )
        for state in ("queued", "running", *FINISHED_STATES):
            builds.add_metric([state], states.get(state, 0))
        yield builds
        yield build_histogram(durations)


def build_histogram(durations: Sequence[tuple[str, float | None]]) -> HistogramMetricFamily:
    """livestrap_build_duration_seconds by outcome, from (state, seconds) of finished builds."""
    family = HistogramMetricFamily(
        "livestrap_build_duration_seconds",
        "How long finished builds ran (started to finished), by outcome.",
        labels=["outcome"],
    )
    for state in FINISHED_STATES:
        seconds = [max(0.0, float(s)) for st, s in durations if st == state and s is not None]
        buckets = [(repr(b), float(sum(1 for s in seconds if s <= b))) for b in BUILD_BUCKETS]
        buckets.append(("+Inf", float(len(seconds))))
        family.add_metric([state], buckets, sum_value=sum(seconds))
    return family


class Metrics:
    """The master's metrics: counters the routes bump, and the database collector."""

    def __init__(self, db: Database, offline_after: int) -> None:
        self.registry = CollectorRegistry()
        reg = self.registry
        self.reports = Counter(
            "livestrap_discovery_reports",
            "Discovery reports accepted, by kind (report: with facts; heartbeat: without).",
            ["kind"],
            registry=reg,
        )
        self.refused = Counter(
            "livestrap_discovery_refused",
            "Discovery reports refused, by reason.",
            ["reason"],
            registry=reg,
        )
        self.artifact_bytes = Counter(
            "livestrap_boot_file_bytes",
            "Bytes of boot files sent, by file and by who sent them (master, nginx in front, "
            "or a rack cache).",
            ["artifact", "via"],
            registry=reg,
        )
        self.cache_fills = Counter(
            "livestrap_boot_cache_fills",
            "Boot file requests of rack caches filling themselves (one per file and slice "
            "per cache when proxy_cache_lock holds), by file.",
            ["artifact"],
            registry=reg,
        )
        self.http_seconds = Histogram(
            "livestrap_http_request_duration_seconds",
            "HTTP request time to the end of the answer, by route template.",
            ["method", "route", "status"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        self.http_first_byte = Histogram(
            "livestrap_http_time_to_first_byte_seconds",
            "HTTP request time to the answer's headers (long "
            "downloads and log tails do not hide it).",
            ["method", "route"],
            buckets=HTTP_BUCKETS,
            registry=reg,
        )
        for kind in ("report", "heartbeat"):
            self.reports.labels(kind)
        for reason in REFUSED_REASONS:
            self.refused.labels(reason)
        for name in ARTIFACTS:
            self.cache_fills.labels(name)
            for via in ("master", "nginx", "rack"):
                self.artifact_bytes.labels(name, via)
        reg.register(InventoryCollector(db, offline_after))

    def refuse(self, reason: str) -> None:
        self.refused.labels(reason if reason in REFUSED_REASONS else "other").inc()

    def cache_fill(self, artifact: str) -> None:
        if artifact in ARTIFACTS:
            self.cache_fills.labels(artifact).inc()

    def sent(self, artifact: str, nbytes: int, via: str = "master") -> None:
        """Bytes of a boot file sent; names other than the artifacts' are not counted."""
        if artifact in ARTIFACTS and nbytes > 0:
            self.artifact_bytes.labels(artifact, via).inc(nbytes)
