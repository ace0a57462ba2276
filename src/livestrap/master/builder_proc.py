"""`livestrap builder`: the build worker (master.worker) as a process of its own, the only
one that runs as root. It shares the API's data dir and database and never migrates or
makes the database: it waits until the API has (a SQLite file root made would lock the
API's user out)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

from livestrap.builder.pipeline import Stage
from livestrap.errors import StartupError
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, schema_is_current
from livestrap.master.running import InUse
from livestrap.master.services.settings import sqlite_file
from livestrap.master.worker import BuildWorker
from livestrap.store.images import ImageStore

log = logging.getLogger(__name__)

SCHEMA_POLL_S = 1.0


def wait_for_database(settings: MasterSettings, stop: threading.Event) -> Database | None:
    """The database once the API made and migrated it; None when stopped first."""
    said = False
    db: Database | None = None
    while not stop.is_set():
        try:
            path = sqlite_file(settings)
            if path is None or path.is_file():
                db = db or Database(settings.db_url)
                if schema_is_current(db.engine):
                    return db
        except Exception as err:  # PostgreSQL not up yet, or a half-made schema
            log.debug("database not ready: %s", err)
        if not said:
            log.info("waiting for the master (livestrap serve) to create the database")
            said = True
        stop.wait(SCHEMA_POLL_S)
    if db is not None:
        db.dispose()
    return None


def run_builder(settings: MasterSettings, stages: list[tuple[str, Stage]] | None = None) -> None:
    """Build until SIGTERM or SIGINT; a build running then ends `interrupted`, cleaned up."""
    if not settings.data_dir.is_dir():
        raise StartupError(
            f"data dir {settings.data_dir} does not exist; start the master (livestrap serve) first"
        )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("builder stopping (%s)", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    db = wait_for_database(settings, stop)
    if db is None:
        return
    # after the database: the master made running.lock (as its own user), we only share it
    in_use = InUse(settings.data_dir)  # a restore refuses while we run
    worker = BuildWorker(db, ImageStore(settings.data_dir), settings, stages, who="builder")
    log.info("builder started: data in %s", settings.data_dir)
    started = time.monotonic()
    worker.start()
    try:
        stop.wait()
    finally:
        worker.stop()
        db.dispose()
        in_use.release()
        log.info("builder stopped after %.0f s", time.monotonic() - started)
