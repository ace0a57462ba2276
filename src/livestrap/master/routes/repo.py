"""/repo: the master's signed APT repository, served as static files (open, like netboot)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from livestrap.master.state import AppState


def mount(app: FastAPI, state: AppState) -> None:
    state.repo.root.mkdir(parents=True, exist_ok=True)
    app.mount("/repo", StaticFiles(directory=state.repo.root, check_dir=False), name="repo")
