"""Build jobs, the API's side: a queue in the `builds` table. The API queues (a row with
the resolved spec), cancels (in the row) and watches; the build worker (master.worker)
runs them, one at a time: a thread of this process in role "all", else `livestrap builder`.

A row's state only moves forward (master.states). Queued rows stay queued over a restart;
running rows a dead worker left end `interrupted` when a worker next looks (master.worker).
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from sqlalchemy import func, select, update

from livestrap.builder.pipeline import Stage
from livestrap.builder.plan import BuildPlan
from livestrap.errors import ConflictError, NotFoundError
from livestrap.master.buildslot import serialize_seqs
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, rows_changed
from livestrap.master.joblog import append_log
from livestrap.master.models import Build
from livestrap.master.services.settings import parse_api_spec, read_settings
from livestrap.master.states import (
    CANCELLED,
    FINISHED,
    QUEUED,
    RUNNING,
    STATES,
    TRANSITIONS,
    can_move,
)
from livestrap.master.worker import STOP_WAIT_S, STOPPED_WHILE, BuildWorker
from livestrap.spec import BuildSpec, ResolvedSpec
from livestrap.store.images import ImageStore

__all__ = [
    "FINISHED",
    "STATES",
    "STOPPED_WHILE",
    "STOP_WAIT_S",
    "TRANSITIONS",
    "BuildQueue",
    "can_move",
    "merge_overrides",
]  # fmt: skip

CANCELLED_QUEUED = "cancelled before it started"


def merge_overrides(base: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The settings with top-level keys replaced by the overrides (lists are replaced,
    not extended: `packages: [x]` means exactly x). Validation happens on the result."""
    return {**base, **(overrides or {})}


class BuildQueue:
    """The API's queue. In role "all" it owns the in-process worker (`worker`); in role
    "api" there is none, and nothing here runs as root or publishes the agent."""

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
        # resolved without the agent: the worker adds (and first publishes) its repository
        self.plan = BuildPlan(settings.data_dir, with_agent=False)
        self.worker = BuildWorker(db, store, settings, stages) if settings.role == "all" else None
        self._stopping = threading.Event()
        self._submits = threading.Lock()  # one seq each in this process (buildslot: across)

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        if self.worker is not None:
            self.worker.start()

    def stop(self) -> None:
        """No new builds; the in-process worker (if any) stops its build."""
        self._stopping.set()
        if self.worker is not None:
            self.worker.stop()

    def _wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

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
        if self._stopping.is_set():
            raise ConflictError("the master is stopping; no new builds")
        build_id = str(uuid.uuid4())
        with self._submits, self.db.session() as session:
            serialize_seqs(session)
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
                    cancel_requested=False,
                    log_path=str(self.settings.layout.build_log(build_id)),
                    created_at=time.time(),
                )
            )
        self._wake()
        return build_id

    def cancel(self, build_id: str) -> None:
        """A queued build is cancelled here and now; a running one is asked to stop (its
        worker, maybe another process, sees `cancel_requested` and cleans up)."""
        where = update(Build).where(Build.id == build_id)
        with self.db.session() as session:
            now = time.time()
            queued = where.where(Build.state == QUEUED).values(
                state=CANCELLED, finished_at=now, error=CANCELLED_QUEUED
            )
            running = where.where(Build.state == RUNNING).values(cancel_requested=True)
            if rows_changed(session, queued) == 1:
                done = "cancelled-now"
            elif rows_changed(session, running) == 1:
                done = "asked"
            else:
                done = session.scalar(select(Build.state).where(Build.id == build_id)) or ""
        if done == "cancelled-now":  # only once committed: a database error leaves it queued
            append_log(self.settings.layout.build_log(build_id), f"=== {CANCELLED_QUEUED}")
        elif done == "asked":
            self._wake()
        elif not done:
            raise NotFoundError(f"no build {build_id}")
        else:
            raise ConflictError(f"build {build_id} already finished ({done})")

    def is_finished(self, build_id: str) -> bool:
        with self.db.session() as session:
            state = session.scalar(select(Build.state).where(Build.id == build_id))
        return state is None or state in FINISHED
