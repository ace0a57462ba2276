"""Build jobs: a queue in the database, one worker thread, live logs (being written)."""

from __future__ import annotations

from livestrap.build.pipeline import Stage
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database
from livestrap.store.images import ImageStore


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

    def start(self) -> None:
        """Mark builds left running by a previous master as interrupted; start the worker."""

    def stop(self) -> None:
        """Cancel the running build (with full cleanup) and stop the worker."""
