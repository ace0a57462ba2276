"""The build worker: ONE implementation, a thread of `livestrap serve` (role "all") or
the main loop of `livestrap builder` (its own process, root; the API runs as a user).

It works from the `builds` table alone, and holds what the API wrote as untrusted: the
spec is validated again (and its host inputs re-checked), the log path is the data dir's
for the build id, never the row's. A claim is a compare-and-set (queued -> running), safe
with two workers and on PostgreSQL; each claim and run happens in the build slot
(master.buildslot: the data dir's worker lock on SQLite, an advisory lock on PostgreSQL,
for every master on that database), so a `running` row while the slot is free was left
by a dead worker: it ends `interrupted` before the next claim. Cancel comes through the row's
`cancel_requested`, polled while the build runs. A build whose worker loses the slot (its
PostgreSQL session ended) stops, and the next worker claims only once the data dir's build
lock is free: never two builds at once, also when a CLI build runs beside the queue.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update

from livestrap.builder.events import BuildEvent
from livestrap.builder.pipeline import STAGES, Stage, build
from livestrap.builder.plan import BuildPlan
from livestrap.builder.workspace import build_lock, remove_tree
from livestrap.errors import BuildCancelled, BuildError, LivestrapError, SpecError
from livestrap.master.buildslot import Slot, build_slot
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, rows_changed
from livestrap.master.groupshare import share_tree, shared_log
from livestrap.master.joblog import append_log, progress_update
from livestrap.master.models import Build
from livestrap.master.services.settings import build_rules
from livestrap.master.states import (
    CANCELLED,
    FAILED,
    INTERRUPTED,
    QUEUED,
    RUNNING,
    SUCCEEDED,
    can_move,
)
from livestrap.master.webhooks import notices
from livestrap.spec import ResolvedSpec
from livestrap.specerrors import format_validation_error
from livestrap.specfields import recheck_host_inputs
from livestrap.store import tmpdirs
from livestrap.store.images import ImageStore

log = logging.getLogger(__name__)

STOPPED_WHILE = "the {who} stopped while this build was {state}"
STOP_WAIT_S = 60.0
IDLE_POLL_S = 1.0  # how often an idle worker looks for queued builds
CANCEL_POLL_S = 0.25  # how often a running build's row is read for a cancel
SLOT_CHECK_EVERY = 4  # of those polls: also ask whether this worker still holds the slot
LOST_SLOT = ("the {who} lost the build slot while this build ran (its database session "
             "ended): stopped, so that no two builds run at once; queue it again")  # fmt: skip


def stored_spec(data: Any, settings: MasterSettings, source: str = "queued build") -> ResolvedSpec:
    """The spec a queued row holds, validated again as what it is (a ResolvedSpec) with the
    worker's rules for API specs, then its host inputs re-checked (a later upload may have
    put a link where a folder was): this is the last word before root builds it."""
    rules = build_rules(settings)
    context = {"base_dir": settings.spec_dir, "rules": rules}
    try:
        spec = ResolvedSpec.model_validate(data, context=context)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source)) from None
    recheck_host_inputs(spec, rules, source=source)
    return spec


def log_build_end(
    build_id: str, state: str, seconds: float, image_id: str | None, error: str | None
) -> None:
    """One line per finished build: outcome, duration, image (or why it failed)."""
    level = logging.INFO if state == SUCCEEDED else logging.WARNING
    what = f"image {image_id}" if image_id else f"error: {(error or '-').splitlines()[0][:300]}"
    log.log(level, "build %s %s after %.1f s, %s", build_id, state, seconds, what)


@dataclass
class Job:
    id: str
    data: Any  # the row's spec, not trusted yet (stored_spec)
    activate: bool
    force: bool
    log_path: Path
    cancel: threading.Event
    by_user: bool = False
    lost_slot: bool = False


@dataclass
class Outcome:
    state: str
    error: str | None = None
    image_id: str | None = None
    reused: bool = False


class BuildWorker:
    """Claims queued builds one at a time and runs them. `who` names this worker in the
    message a build it finds left over gets ("the builder stopped while ...")."""

    def __init__(
        self,
        db: Database,
        store: ImageStore,
        settings: MasterSettings,
        stages: list[tuple[str, Stage]] | None = None,
        *,
        who: str = "master",
    ) -> None:
        self.db, self.store, self.settings, self.stages = db, store, settings, stages
        self.who = who
        self.plan = BuildPlan(  # fake stages (tests) need no repo
            settings.data_dir,
            with_agent=stages is None,
            log=lambda line: log.info("publish: %s", line),
        )
        self._lock = threading.Lock()
        self._job: Job | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiting: str | None = None  # the build lock's holder last logged

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """End builds a dead worker left running (now, before anyone reads them) and
        remove the build trees it left; then work in a thread. Both only while holding
        the build slot (another worker that holds it may be building right now, and even a
        moment's hold of the build lock here would fail its build), and then the build
        lock (a build that still holds it is not over)."""
        self._stopping.clear()
        with self._slot() as slot:
            if slot:
                with self._build_lock() as locked:
                    if locked:
                        self.recover()
                        self._clean_stale()
        self._thread = threading.Thread(target=self.run, name="build-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the running build (with full cleanup: it ends `interrupted`) and the loop.
        Queued builds stay queued: the next worker runs them."""
        with self._lock:
            self._stopping.set()
            if self._job is not None:
                self._job.cancel.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                log.error("build worker did not stop within %.0f s", STOP_WAIT_S)

    def wake(self) -> None:
        """Look for work now (a build was queued or a cancel asked in this process)."""
        self._wake.set()

    def run(self) -> None:
        """The loop: until stop(), claim and run builds; idle, look again every second."""
        while not self._stopping.is_set():
            try:
                if self.turn():
                    continue
            except Exception:  # e.g. the database went away: keep the worker alive
                log.exception("build worker error")
            self._wake.wait(timeout=IDLE_POLL_S)
            self._wake.clear()

    def _slot(self) -> AbstractContextManager[Slot]:
        """The build slot (master.buildslot): whether this worker holds it."""
        return build_slot(self.db.engine, self.settings.layout.worker_lock)

    def turn(self) -> bool:
        """One recovery, claim and run, in the build slot and under the data dir's build
        lock; whether a build ran."""
        with self._slot() as slot:
            if not slot or not self._pending():
                return False
            with self._build_lock() as locked:
                if not locked:
                    return False
                self.recover()
                job = self.claim()
                if job is None:
                    return False
                self.finish(job, self.execute(job, slot))
                return True

    @contextlib.contextmanager
    def _build_lock(self) -> Iterator[bool]:
        """Try the data dir's build lock: whether this worker holds it. It is held by a CLI
        build, or by a build whose worker lost the slot and is stopping: a `running` row is
        then not a dead worker's, and queued builds wait (logged once per holder)."""
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(build_lock(self.store.data_dir))
            except BuildError as err:
                if err.message != self._waiting:
                    log.warning("builds wait: %s", err.message)
                self._waiting = err.message
                yield False
                return
            self._waiting = None
            yield True

    def _clean_stale(self) -> None:
        """Remove build trees a killed worker left in tmp/ (under the build lock)."""
        try:
            for name in self.store.clean_stale_tmp((tmpdirs.BUILD,), eraser=remove_tree):
                log.warning("removed stale build tree %s", self.store.tmp_dir / name)
        except BuildError as err:  # a tree with a mount left: never deleted
            log.warning("stale build trees not cleaned: %s", err)

    # -- claims --------------------------------------------------------------------------

    def recover(self) -> list[str]:
        """Builds left `running` (call in the build slot and the build lock: no live
        worker runs one) end `interrupted`, with why in the error and at the end of the log."""
        error = STOPPED_WHILE.format(who=self.who, state=RUNNING)
        with self.db.session() as session:
            rows = session.scalars(select(Build).where(Build.state == RUNNING)).all()
            for row in rows:
                row.state, row.error, row.finished_at = INTERRUPTED, error, time.time()
                notices.build_finished(session, row.id, INTERRUPTED, row.image_id, error)
            ended = [row.id for row in rows]
        for build_id in ended:
            log.warning("build %s interrupted: %s", build_id, error)
            self._note(build_id, f"=== build interrupted: {error}")
        return ended

    def _pending(self) -> bool:
        """Whether a build is queued or left running (the build lock is tried only then)."""
        first = select(Build.id).where(Build.state.in_((QUEUED, RUNNING))).limit(1)
        with self.db.session() as session:
            return session.scalar(first) is not None

    def claim(self) -> Job | None:
        """The oldest queued build, now `running` (committed), as a job; None when there
        is none. A compare-and-set: a build another worker (or a cancel) took first is
        skipped. Raises when the database does; the build then stays queued."""
        while not self._stopping.is_set():
            with self.db.session() as session:
                first = select(Build.id).where(Build.state == QUEUED).order_by(Build.seq)
                build_id = session.scalar(first.limit(1))
                if build_id is None:
                    return None
                cas = update(Build).where(Build.id == build_id, Build.state == QUEUED)
                won = rows_changed(session, cas.values(state=RUNNING, started_at=time.time()))
                row = session.get(Build, build_id) if won == 1 else None
                if row is None:
                    continue
                path = self.settings.layout.build_log(build_id)  # never row.log_path
                job = Job(build_id, row.spec, row.activate, row.force, path, threading.Event())
            with self._lock:
                self._job = job
                if self._stopping.is_set():
                    job.cancel.set()
            return job
        return None

    def _note(self, build_id: str, line: str) -> None:
        try:
            append_log(shared_log(self.settings.layout.build_log(build_id)), line)
        except OSError as err:
            log.warning("log of build %s not written: %s", build_id, err)

    # -- a build -------------------------------------------------------------------------

    def execute(self, job: Job, slot: Slot | None = None) -> Outcome:
        """Run one build, watching its row for a cancel and `slot` for its loss; every end
        is an outcome."""
        done = threading.Event()
        watcher = threading.Thread(
            target=self._watch_cancel, args=(job, done, slot), name="build-cancel", daemon=True
        )
        watcher.start()
        try:
            return self._run(job)
        finally:
            done.set()
            watcher.join()

    def _watch_cancel(self, job: Job, done: threading.Event, slot: Slot | None) -> None:
        for polls in itertools.count(1):
            if done.wait(CANCEL_POLL_S):
                return
            if slot is not None and polls % SLOT_CHECK_EVERY == 0 and not slot.alive():
                log.error("build %s: %s", job.id, LOST_SLOT.format(who=self.who))
                job.lost_slot = True
                job.cancel.set()
                return
            try:
                with self.db.session() as session:
                    asked = session.scalar(select(Build.cancel_requested).where(Build.id == job.id))
            except Exception:  # the database is away for a moment: ask again
                log.warning("cancel of build %s not checked", job.id, exc_info=True)
                continue
            if asked:
                job.by_user = True
                job.cancel.set()
                return

    def _on_event(self, job: Job, names: list[str], done: dict[str, Any]) -> Any:
        def on_event(event: BuildEvent) -> None:
            if event.kind == "build-done":
                done.update(event.data)
            fields = progress_update(names, event)
            try:
                if fields:
                    with self.db.session() as session:
                        session.execute(update(Build).where(Build.id == job.id).values(**fields))
            except Exception:  # progress is for show: never fail a build over it
                log.exception("progress of build %s not recorded", job.id)

        return on_event

    def _prepare(self, job: Job) -> ResolvedSpec:
        """The row's spec checked again, plus the agent's repository (published on first
        use: here, not in the API); the row then records what really builds."""
        checked = stored_spec(job.data, self.settings)
        spec = self.plan.add_agent(checked)
        if spec is not checked:
            with self.db.session() as session:
                dumped = spec.model_dump(mode="json")
                session.execute(update(Build).where(Build.id == job.id).values(spec=dumped))
        return spec

    def _run(self, job: Job) -> Outcome:
        names = [name for name, _ in self.stages or STAGES]
        done: dict[str, Any] = {}
        try:
            shared_log(job.log_path)
            log.info("build %s started", job.id)
            meta = build(
                self._prepare(job),
                self.store,
                log_path=job.log_path,
                events=self._on_event(job, names, done),
                cancel=job.cancel,
                stages=self.stages,
                force=job.force,
                cache_dir=self.settings.cache_dir,
            )
        except BuildCancelled as err:
            if job.by_user:
                return Outcome(CANCELLED, str(err))
            stopped = STOPPED_WHILE.format(who=self.who, state=RUNNING)
            if job.lost_slot:
                stopped = LOST_SLOT.format(who=self.who)
            append_log(job.log_path, f"=== build interrupted: {stopped}")
            return Outcome(INTERRUPTED, stopped)
        except BuildError as err:
            return Outcome(FAILED, str(err))
        except LivestrapError as err:  # the stored spec no longer passes, or the publish
            append_log(job.log_path, f"=== build failed: {err}")
            return Outcome(FAILED, str(err))
        except Exception as err:
            log.exception("build %s failed unexpectedly", job.id)
            append_log(job.log_path, f"=== build failed: {type(err).__name__}: {err}")
            return Outcome(FAILED, f"{type(err).__name__}: {err}")
        share_tree(self.store.images_dir / meta.id)
        reused = bool(done.get("reused", False))
        return self._activate(job, Outcome(SUCCEEDED, image_id=meta.id, reused=reused))

    def _activate(self, job: Job, outcome: Outcome) -> Outcome:
        if not job.activate or outcome.image_id is None:
            return outcome
        try:
            self.store.activate(outcome.image_id)
        except Exception as err:
            outcome.state, outcome.error = FAILED, f"built, but not activated: {err}"
            append_log(job.log_path, f"=== {outcome.error}")
            return outcome
        append_log(job.log_path, f"=== activated {outcome.image_id}")
        return outcome

    def finish(self, job: Job, outcome: Outcome) -> None:
        """Record how the build ended; the log is complete before the state says finished."""
        with self._lock, self.db.session() as session:
            row = session.get(Build, job.id)
            took = time.time() - (row.started_at or time.time()) if row is not None else 0.0
            log_build_end(job.id, outcome.state, took, outcome.image_id, outcome.error)
            if row is not None and can_move(row.state, outcome.state):
                row.state, row.error, row.finished_at = outcome.state, outcome.error, time.time()
                row.image_id, row.reused = outcome.image_id, outcome.reused
                notices.build_finished(session, job.id, outcome.state, outcome.image_id,
                                       outcome.error)  # fmt: skip
                if job.activate and outcome.state == SUCCEEDED and outcome.image_id:
                    notices.image_activated(session, outcome.image_id, "build")
            self._job = None
