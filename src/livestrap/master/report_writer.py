"""One thread applies every discovery report, a batch per transaction (group commit).

Why: a fleet reports in bursts (thousands of first reports after a power cut, then a
heartbeat per node every heartbeat_s). With one worker thread per request, dozens of
threads queue for SQLite's single write lock and for the GIL, and a thread that holds
the lock waits for the GIL at every statement, so throughput collapses as load grows.
Here the event loop parses and validates, and a single writer drains whatever reports
have queued up meanwhile into one transaction: one commit (one WAL append, one fsync
at most) per batch, no lock convoy, and one wake-up of the event loop per batch.

On PostgreSQL, which takes concurrent writers, a few writers drain the same queue, so
that one batch's round trips to the server overlap with another's work.

If a batch fails (a lost race with another master on a shared PostgreSQL, a bug in
one report), it is rolled back and each of its reports is applied alone, so one bad
report never costs the others theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from livestrap.master.db import Database
from livestrap.master.inventory import Outcome, Report

log = logging.getLogger("livestrap.master")

MAX_BATCH = 128
PG_WRITERS = 4
Apply = Callable[[Session, Report, str | None], Outcome]


@dataclass
class _Job:
    report: Report
    ip: str | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Outcome]


class ReportWriter:
    """`await writer.submit(report, ip)` -> the report's Outcome, applied by a writer."""

    def __init__(
        self, db: Database, apply: Apply, max_batch: int = MAX_BATCH, writers: int | None = None
    ) -> None:
        self.db = db
        self.apply = apply
        self.max_batch = max_batch
        sqlite = db.engine.dialect.name == "sqlite"
        self.writers = writers or (1 if sqlite else PG_WRITERS)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    async def submit(self, report: Report, ip: str | None) -> Outcome:
        self._ensure_started()
        loop = asyncio.get_running_loop()
        job = _Job(report, ip, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def _ensure_started(self) -> None:
        if not self._threads:
            with self._start_lock:
                if not self._threads:
                    threads = [
                        threading.Thread(target=self._run, name=f"report-writer-{n}", daemon=True)
                        for n in range(self.writers)
                    ]
                    for thread in threads:
                        thread.start()
                    self._threads = threads

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the queued reports, then end the threads."""
        with self._start_lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        for thread in threads:
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            batch = [job]
            while len(batch) < self.max_batch:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._answer(batch, self._apply_batch(batch))

    def _apply_batch(self, batch: list[_Job]) -> list[Outcome | BaseException]:
        try:
            with self.db.session() as session:
                return [self.apply(session, job.report, job.ip) for job in batch]
        except Exception as exc:
            if len(batch) == 1 and not isinstance(exc, IntegrityError):
                return [exc]
            log.debug("batch of %d reports failed (%s); applying them one by one", len(batch), exc)
            return [self._apply_alone(job) for job in batch]

    def _apply_alone(self, job: _Job) -> Outcome | BaseException:
        """One report in its own transaction. Two first reports of one machine (from two
        masters) can both insert a node: the loser hits the unique MAC or UUID, rolls
        back, and its retry finds the winner's node."""
        for attempt in (1, 2):
            try:
                with self.db.session() as session:
                    return self.apply(session, job.report, job.ip)
            except IntegrityError as exc:
                if attempt == 2:
                    return exc
                log.debug("discovery race for node %s; retrying", job.report.boot_mac)
            except Exception as exc:
                return exc
        raise AssertionError("unreachable")

    @staticmethod
    def _answer(batch: list[_Job], results: list[Outcome | BaseException]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, Outcome | BaseException]]] = {}
        for job, result in zip(batch, results, strict=True):
            by_loop.setdefault(job.loop, []).append((job, result))
        for loop, pairs in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[_Job, Outcome | BaseException]]) -> None:
    for job, result in pairs:
        if job.future.done():  # the request was cancelled (client gone)
            continue
        if isinstance(result, BaseException):
            job.future.set_exception(result)
        else:
            job.future.set_result(result)
