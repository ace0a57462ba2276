"""Build jobs: a queue in the `builds` table and ONE worker thread, so builds never race
for the build lock, the package cache or the CPU; each build has its own log file.

A row's state only moves forward (see TRANSITIONS). Rows a stopped master left queued or
running become `interrupted` on the next start, so nothing shows `running` forever.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from livestrap.builder.events import BuildEvent
from livestrap.builder.pipeline import STAGES, Stage, build
from livestrap.builder.plan import BuildPlan
from livestrap.builder.workspace import build_lock, remove_tree
from livestrap.errors import BuildCancelled, BuildError, ConflictError, NotFoundError
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database
from livestrap.master.joblog import append_log, progress_update
from livestrap.master.models import Build
from livestrap.master.services.settings import build_rules, parse_api_spec, read_settings
from livestrap.spec import BuildSpec, ResolvedSpec
from livestrap.specfields import recheck_host_inputs
from livestrap.store import tmpdirs
from livestrap.store.images import ImageStore

log = logging.getLogger(__name__)

QUEUED, RUNNING, SUCCEEDED = "queued", "running", "succeeded"
FAILED, CANCELLED, INTERRUPTED = "failed", "cancelled", "interrupted"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED})
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, CANCELLED, INTERRUPTED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED}),
}
STOPPED_WHILE = "the master stopped while this build was {}"
STOP_WAIT_S = 60.0


def can_move(old: str, new: str) -> bool:
    """Whether a build may go from state `old` to `new` (finished states are final)."""
    return new in TRANSITIONS.get(old, frozenset())


def log_build_end(
    build_id: str, state: str, seconds: float, image_id: str | None, error: str | None
) -> None:
    """One line per finished build: outcome, duration, image (or why it failed)."""
    level = logging.INFO if state == SUCCEEDED else logging.WARNING
    what = f"image {image_id}" if image_id else f"error: {(error or '-').splitlines()[0][:300]}"
    log.log(level, "build %s %s after %.1f s, %s", build_id, state, seconds, what)


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The settings with top-level keys replaced by the overrides (lists are replaced,
    not extended: `packages: [x]` means exactly x). Validation happens on the result."""
    return {**base, **(overrides or {})}


@dataclass
class _Job:
    id: str
    spec: ResolvedSpec
    activate: bool
    force: bool
    log_path: Path
    cancel: threading.Event


@dataclass
class _Outcome:
    state: str
    error: str | None = None
    image_id: str | None = None
    reused: bool = False


class BuildQueue:
    def __init__(
        self,
        db: Database,
        store: ImageStore,
        settings: MasterSettings,
        stages: list[tuple[str, Stage]] | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.settings = settings
        self.stages = stages
        self.plan = BuildPlan(  # fake stages (tests) need no repo
            settings.data_dir,
            with_agent=stages is None,
            log=lambda line: log.info("publish: %s", line),
        )
        self._lock = threading.Lock()  # guards claims, cancels and the three fields below
        self._queued: dict[str, ResolvedSpec] = {}  # queued build -> what it builds
        self._cancels: dict[str, threading.Event] = {}  # running build -> its cancel event
        self._user_cancelled: set[str] = set()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def log_path(self, build_id: str) -> Path:
        return self.settings.layout.build_log(build_id)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Mark builds left running by a previous master as interrupted; start the worker."""
        self._interrupt_left_over((QUEUED, RUNNING))
        self._stopping.clear()
        self._thread = threading.Thread(target=self._work, name="build-worker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Cancel the running build (with full cleanup) and stop the worker."""
        with self._lock:
            self._stopping.set()
            for event in self._cancels.values():
                event.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(STOP_WAIT_S)
            if self._thread.is_alive():
                log.error("build worker did not stop within %.0f s", STOP_WAIT_S)
        self._interrupt_left_over((QUEUED,))

    def _interrupt_left_over(self, states: tuple[str, ...]) -> None:
        now = time.time()
        with self.db.session() as session:
            rows = session.scalars(select(Build).where(Build.state.in_(states))).all()
            for row in rows:
                row.error = STOPPED_WHILE.format(row.state)
                row.state, row.finished_at = INTERRUPTED, now
                append_log(Path(row.log_path), f"=== build interrupted: {row.error}")
            ended = [row.id for row in rows]
        with self._lock:  # after the session: claims take the lock, then a session
            for build_id in ended:
                self._queued.pop(build_id, None)

    # -- requests ------------------------------------------------------------------------

    def stored_spec(self) -> dict[str, Any]:
        """The settings spec (all defaults when none was stored yet)."""
        with self.db.session() as session:
            data = read_settings(session)
        return BuildSpec().model_dump(mode="json") if data is None else data

    def prepare(self, overrides: dict[str, Any] | None) -> ResolvedSpec:
        """The full effective spec of a new build, checked and extended like the CLI does."""
        data = merge_overrides(self.stored_spec(), overrides)
        source = "build spec (settings + overrides)" if overrides else "settings"
        return self.plan.resolve(parse_api_spec(data, self.settings, source), source)

    def submit(self, spec_overrides: dict[str, Any] | None, activate: bool, force: bool) -> str:
        """Queue a build of the settings (plus overrides); returns its id."""
        spec = self.prepare(spec_overrides)
        build_id = str(uuid.uuid4())
        with self._lock:
            if self._stopping.is_set():
                raise ConflictError("the master is stopping; no new builds")
            with self.db.session() as session:
                seq = session.scalar(select(func.max(Build.seq))) or 0
                session.add(
                    Build(
                        id=build_id,
                        seq=seq + 1,
                        state=QUEUED,
                        progress=0.0,
                        spec=spec.model_dump(mode="json"),
                        activate=activate,
                        force=force,
                        reused=False,
                        log_path=str(self.log_path(build_id)),
                        created_at=time.time(),
                    )
                )
            self._queued[build_id] = spec
        self._wake.set()
        return build_id

    def cancel(self, build_id: str) -> None:
        """Cancel at once when queued; a running build stops when its pipeline sees it."""
        with self._lock:
            event = self._cancels.get(build_id)
            if event is not None:
                self._user_cancelled.add(build_id)
                event.set()
                return
            with self.db.session() as session:
                row = session.get(Build, build_id)
                if row is None:
                    raise NotFoundError(f"no build {build_id}")
                if not can_move(row.state, CANCELLED):
                    raise ConflictError(f"build {build_id} already finished ({row.state})")
                row.state, row.finished_at = CANCELLED, time.time()
                row.error = note = "cancelled before it started"
                log_path = Path(row.log_path)
            # only once committed: a database error leaves the build queued, and claimable
            self._queued.pop(build_id, None)
            append_log(log_path, f"=== {note}")

    def is_finished(self, build_id: str) -> bool:
        with self.db.session() as session:
            state = session.scalar(select(Build.state).where(Build.id == build_id))
        return state is None or state in FINISHED

    # -- the worker ----------------------------------------------------------------------

    def _work(self) -> None:
        self._clean_stale()
        while not self._stopping.is_set():
            try:
                job = self._claim_next()
                if job is not None:
                    self._finish(job, self._run(job))
                    continue
            except Exception:  # e.g. the database went away: keep the worker alive
                log.exception("build worker error")
            self._wake.wait(timeout=1.0)
            self._wake.clear()

    def _clean_stale(self) -> None:
        """Remove build trees a killed master left in tmp/ (unless a CLI build holds the lock)."""
        try:
            with build_lock(self.store.data_dir):
                for name in self.store.clean_stale_tmp((tmpdirs.BUILD,), eraser=remove_tree):
                    log.warning("removed stale build tree %s", self.store.tmp_dir / name)
        except BuildError as err:
            log.warning("stale build trees not cleaned: %s", err)

    def _claim_next(self) -> _Job | None:
        """The oldest build this queue took, now running. Its resolved spec is kept in
        memory from submit (in seq order), never parsed again from the row, the record.
        The build leaves `_queued` only once `running` is committed: a database error
        leaves it queued in both places, and the worker's next turn claims it again."""
        with self._lock:
            while not self._stopping.is_set() and self._queued:
                build_id, spec = next(iter(self._queued.items()))
                job = self._mark_running(build_id, spec)
                del self._queued[build_id]
                if job is not None:
                    self._cancels[build_id] = job.cancel
                    return job
            return None

    def _mark_running(self, build_id: str, spec: ResolvedSpec) -> _Job | None:
        """The build as a job once its row says `running` (committed); None when the row
        is gone or no longer queued. Raises when the database does."""
        with self.db.session() as session:
            row = session.get(Build, build_id)
            if row is None or row.state != QUEUED:
                return None
            row.state, row.started_at = RUNNING, time.time()
            log_path, cancel = Path(row.log_path), threading.Event()
            job = _Job(build_id, spec, row.activate, row.force, log_path, cancel)
        log.info("build %s started: %s (log %s)", build_id, spec.label, log_path)
        return job

    def _run(self, job: _Job) -> _Outcome:
        """Run one build; every way it can end becomes an outcome, never an exception."""
        names = [name for name, _ in self.stages or STAGES]
        done: dict[str, Any] = {}

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

        try:
            # checked at submit; what it names may have changed since: this is the last word
            recheck_host_inputs(job.spec, build_rules(self.settings), source="build spec")
            meta = build(
                job.spec,
                self.store,
                log_path=job.log_path,
                events=on_event,
                cancel=job.cancel,
                stages=self.stages,
                force=job.force,
                cache_dir=self.settings.cache_dir,
            )
        except BuildCancelled as err:
            with self._lock:
                by_user = job.id in self._user_cancelled
            if by_user:
                return _Outcome(CANCELLED, str(err))
            append_log(job.log_path, f"=== build interrupted: {STOPPED_WHILE.format(RUNNING)}")
            return _Outcome(INTERRUPTED, STOPPED_WHILE.format(RUNNING))
        except BuildError as err:
            return _Outcome(FAILED, str(err))
        except Exception as err:
            log.exception("build %s failed unexpectedly", job.id)
            append_log(job.log_path, f"=== build failed: {type(err).__name__}: {err}")
            return _Outcome(FAILED, f"{type(err).__name__}: {err}")
        reused = bool(done.get("reused", False))
        return self._activate(job, _Outcome(SUCCEEDED, image_id=meta.id, reused=reused))

    def _activate(self, job: _Job, outcome: _Outcome) -> _Outcome:
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

    def _finish(self, job: _Job, outcome: _Outcome) -> None:
        """Record how the build ended; the log is complete before the state says finished."""
        with self._lock, self.db.session() as session:
            row = session.get(Build, job.id)
            if row is not None and can_move(row.state, outcome.state):
                row.state, row.error, row.finished_at = outcome.state, outcome.error, time.time()
                row.image_id, row.reused = outcome.image_id, outcome.reused
                log_build_end(job.id, outcome.state, row.finished_at - (row.started_at or 0),
                              outcome.image_id, outcome.error)  # fmt: skip
            self._cancels.pop(job.id, None)
            self._user_cancelled.discard(job.id)
