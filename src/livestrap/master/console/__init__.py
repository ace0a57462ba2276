"""The web console at /ui/: server-rendered pages (Jinja2) with a vendored htmx for live
parts; nothing is fetched from another origin. mount() adds it to the master's app."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from livestrap.master.console import (
    auth,
    builds,
    images,
    node_actions,
    nodes,
    overview,
    problems,
    settings,
)
from livestrap.master.console.guard import PREFIX, LoginRequired, SecurityHeaders, login_url
from livestrap.master.console.render import HERE

PAGES = (
    auth,
    overview,
    nodes,
    node_actions,
    images,
    builds,
    settings,
)  # each module has a `router`


def mount(app: FastAPI) -> None:
    """The pages, their static files and their error pages (after master.errors' handlers,
    which it keeps for every path outside /ui)."""
    app.add_middleware(SecurityHeaders)
    problems.install(app)
    app.mount(f"{PREFIX}/static", StaticFiles(directory=HERE / "static"), name="console-static")
    for module in PAGES:
        app.include_router(module.router)

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> Response:
        if request.headers.get("hx-request"):  # htmx: make the whole page go to the login
            return Response(status_code=401, headers={"HX-Redirect": login_url(exc.next_path)})
        if request.method in ("GET", "HEAD"):
            return RedirectResponse(login_url(exc.next_path), status_code=303)
        back = problems.back_to(request)  # the page the form was on, not the POST's URL
        return problems.problem_page(request, 401, "Your session has ended: log in again.",
                                     back=login_url(back), back_label="Log in")  # fmt: skip
