"""create_app(settings): the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from livestrap import __version__
from livestrap.builder.pipeline import Stage
from livestrap.master import apidocs, console
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.deps import AdminOnly
from livestrap.master.errors import install_error_handlers
from livestrap.master.guards import Guards
from livestrap.master.httpmetrics import MetricsMiddleware
from livestrap.master.inventory import report_applier
from livestrap.master.jobs import BuildQueue
from livestrap.master.limits import add_body_limits
from livestrap.master.logsetup import redact
from livestrap.master.metrics import Metrics
from livestrap.master.report_writer import ReportWriter
from livestrap.master.routes import (
    actions,
    boot,
    boot_notices,
    builds,
    discovery,
    images,
    loaders,
    nodes,
    repo,
    rules,
    settings,
    specfiles,
    webhooks,
)
from livestrap.master.running import InUse
from livestrap.master.services import action_hooks
from livestrap.master.services.actions import LostSweep
from livestrap.master.state import AppState
from livestrap.master.tftp_sync import TreeSync
from livestrap.master.token_watch import TokenWatch, end_sessions_older_than_file
from livestrap.master.tokens import ensure_token
from livestrap.master.webhooks.dispatch import Dispatcher
from livestrap.packaging.master_repo import MasterRepo
from livestrap.store.images import ImageStore
from livestrap.workdirs import protect_data_dir

log = logging.getLogger(__name__)


def make_state(
    cfg: MasterSettings, build_stages: list[tuple[str, Stage]] | None = None
) -> AppState:
    # 0750 (an operator's o+x stays) and its secrets' own modes; spec/ is the only folder
    # API specs may name files in
    protect_data_dir(cfg.data_dir)
    db = Database(cfg.db_url)
    store = ImageStore(cfg.data_dir)
    guards = Guards.from_settings(cfg, db)
    sweep = LostSweep(db, cfg.action_timeout_s, guards.history, queue_ttl_s=cfg.action_queue_ttl_s)
    guards.periodic.append(sweep.sweep)
    action_hooks.install()  # an action's end: its webhook, and rules after a reinspect
    state = AppState(
        settings=cfg,
        db=db,
        store=store,
        repo=MasterRepo(cfg.data_dir),
        jobs=BuildQueue(db, store, cfg, build_stages),
        admin_token=_token("admin", cfg.admin_token_file),
        discovery_token=_token("discovery", cfg.discovery_token_file),
        reports=ReportWriter(db, report_applier(cfg, guards)),
        guards=guards,
        metrics=Metrics(db, cfg.offline_after),
        webhooks=Dispatcher(db, cfg),
    )
    guards.periodic.append(TokenWatch.for_state(state))  # a new token needs no restart
    if cfg.tftp_dir is not None and cfg.public_url is not None:  # the Secure Boot chain
        guards.periodic.append(
            TreeSync(cfg.tftp_dir, store, cfg.public_url, state, cfg.boot_retry_s)
        )
    return state


def _token(name: str, path: Path) -> str:
    """The token in `path` (made on first start); the log says where, never what."""
    token, made = ensure_token(path)
    redact(token)
    if made:
        log.info("%s token made: %s (mode 0600; read it there, it is never logged)", name, path)
    return token


def listen_url(cfg: MasterSettings) -> str:
    scheme = "https" if cfg.tls_cert else "http"
    host = f"[{cfg.host}]" if ":" in cfg.host else cfg.host
    return f"{scheme}://{host}:{cfg.port}"


def warn_invalid_images(store: ImageStore) -> list[str]:
    """Log, once at start, each stored image that breaks a rule newer than it (it stays
    listed; one with refused kernel options is never booted); the ids."""
    ids = []
    for info in store.list():
        if info.problems:
            ids.append(info.id)
            log.warning("image %s breaks rules of this livestrap%s: %s", info.id,
                        " (it is the active image: nodes get the retry script)" if info.active
                        else "", "; ".join(info.problems))  # fmt: skip
    return ids


def create_app(
    cfg: MasterSettings, *, build_stages: list[tuple[str, Stage]] | None = None
) -> FastAPI:
    """The master app for `cfg`. `build_stages` replaces the build pipeline (tests)."""
    state = make_state(cfg, build_stages)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        in_use = await anyio.to_thread.run_sync(InUse, cfg.data_dir)  # restore waits for us
        log.info("livestrap %s starting: listen %s, data dir %s, role %s", __version__,
                 listen_url(cfg), cfg.data_dir, cfg.role)  # fmt: skip
        migrate(state.db.engine)
        # an admin token written while the master was down ends the older console sessions
        await anyio.to_thread.run_sync(end_sessions_older_than_file, state.db,
                                     cfg.admin_token_file)  # fmt: skip
        # what killed imports, uploads and exports left (maybe big: off the event loop)
        await anyio.to_thread.run_sync(state.store.clean_stale_tmp)
        await anyio.to_thread.run_sync(warn_invalid_images, state.store)
        state.jobs.start()
        state.guards.start()  # writes the counted refusals every few seconds
        state.webhooks.start()  # sends the outbox's deliveries (master.webhooks)
        try:
            yield
        finally:
            state.jobs.stop()
            state.reports.stop()
            state.webhooks.stop()
            state.guards.stop()
            state.db.dispose()
            in_use.release()
            log.info("livestrap master stopped")

    app = FastAPI(
        title="livestrap master",
        version=__version__,
        description="Build, store and serve live discovery images; keep the inventory.",
        lifespan=lifespan,
        docs_url=None,  # apidocs serves /docs and /redoc without a CDN
        redoc_url=None,
        generate_unique_id_function=apidocs.operation_id,
    )
    app.state.livestrap = state
    install_error_handlers(app)
    add_body_limits(app, cfg, page=console.problems.too_large)  # a page under /ui
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    for module in (specfiles, settings, builds, images, nodes, discovery, rules, actions):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(actions.agent_router, prefix="/api/v1")
    app.include_router(webhooks.router, prefix="/api/v1")
    app.include_router(boot.router)
    app.include_router(boot_notices.router)
    app.include_router(loaders.router)
    repo.mount(app, state)
    apidocs.mount(app)
    console.mount(app)

    @app.get("/healthz", tags=["health"], summary="Liveness check and version")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/metrics", tags=["health"], dependencies=[AdminOnly], response_class=Response,
             summary="Prometheus metrics (admin token)")  # fmt: skip
    def metrics() -> Response:
        """Prometheus text format; the counts of nodes and builds are read at each scrape."""
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
