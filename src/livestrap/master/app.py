"""create_app(settings): the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI

from livestrap import __version__
from livestrap.builder.pipeline import Stage
from livestrap.master import apidocs, console
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.errors import install_error_handlers
from livestrap.master.guards import Guards
from livestrap.master.inventory import report_applier
from livestrap.master.jobs import BuildQueue
from livestrap.master.limits import add_body_limits
from livestrap.master.report_writer import ReportWriter
from livestrap.master.routes import (
    boot,
    builds,
    discovery,
    images,
    nodes,
    repo,
    settings,
    specfiles,
)
from livestrap.master.state import AppState
from livestrap.master.tokens import ensure_token
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
    return AppState(
        settings=cfg,
        db=db,
        store=store,
        repo=MasterRepo(cfg.data_dir),
        jobs=BuildQueue(db, store, cfg, build_stages),
        admin_token=ensure_token(cfg.admin_token_file)[0],
        discovery_token=ensure_token(cfg.discovery_token_file)[0],
        reports=ReportWriter(db, report_applier(cfg, guards)),
        guards=guards,
    )


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
        migrate(state.db.engine)
        # what killed imports, uploads and exports left (maybe big: off the event loop)
        await anyio.to_thread.run_sync(state.store.clean_stale_tmp)
        await anyio.to_thread.run_sync(warn_invalid_images, state.store)
        state.jobs.start()
        state.guards.start()  # writes the counted refusals every few seconds
        try:
            yield
        finally:
            state.jobs.stop()
            state.reports.stop()
            state.guards.stop()
            state.db.dispose()

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
    for module in (specfiles, settings, builds, images, nodes, discovery):
        app.include_router(module.router, prefix="/api/v1")
    app.include_router(boot.router)
    repo.mount(app, state)
    apidocs.mount(app)
    console.mount(app)

    @app.get("/healthz", tags=["health"], summary="Liveness check and version")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
