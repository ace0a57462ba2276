"""What the app's request handlers share; made by create_app, never at import time."""

from __future__ import annotations

from dataclasses import dataclass

from livestrap.master.config import MasterSettings
from livestrap.master.db import Database
from livestrap.master.guards import Guards
from livestrap.master.jobs import BuildQueue
from livestrap.master.metrics import Metrics
from livestrap.master.report_writer import ReportWriter
from livestrap.master.webhooks.dispatch import Dispatcher
from livestrap.packaging.master_repo import MasterRepo
from livestrap.store.images import ImageStore


@dataclass
class AppState:
    settings: MasterSettings
    db: Database
    store: ImageStore
    repo: MasterRepo
    jobs: BuildQueue
    admin_token: str
    discovery_token: str
    reports: ReportWriter
    guards: Guards
    metrics: Metrics
    webhooks: Dispatcher
