"""/ui/settings: the build spec as YAML in a text area, checked on save exactly as
PUT /api/v1/settings checks it (services.settings); the problems are listed next to the
text, by field and line, and nothing is stored until there are none. The effective spec
(every default filled) shows beside it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from livestrap.errors import Problem, SpecError
from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.render import page
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.services.settings import (
    MAX_SPEC_CHARS,
    as_yaml,
    effective_settings,
    replace_settings_yaml,
    settings_from_yaml,
    shown_settings,
)

router = APIRouter(
    prefix=f"{PREFIX}/settings", dependencies=CONSOLE_GUARDS, include_in_schema=False
)
SpecText = Annotated[str, Form()]


def settings_page(
    request: Request, login: LoginDep, db: SessionDep, state: StateDep, *,
    text: str | None = None, problems: list[Problem] | None = None, saved: bool = False,
) -> Response:  # fmt: skip
    """The form (`text` as typed, else the stored spec) and the effective spec."""
    try:
        effective, effective_error = as_yaml(effective_settings(db, state.settings)), None
    except SpecError as err:
        effective, effective_error = None, str(err)
    return page(
        request, "settings.html", login, status_code=422 if problems else 200,
        title="Settings", text=as_yaml(shown_settings(db)) if text is None else text,
        problems=problems or [], saved=saved and not problems, effective=effective,
        effective_error=effective_error, max_chars=MAX_SPEC_CHARS,
    )  # fmt: skip


@router.get("")
def settings(
    request: Request, login: LoginDep, db: SessionDep, state: StateDep, saved: bool = False
) -> Response:
    return settings_page(request, login, db, state, saved=saved)


@router.post("")
def save(
    request: Request, login: LoginDep, db: SessionDep, state: StateDep, spec: SpecText = ""
) -> Response:
    """Store the spec if it passes; else 422 with the problems and the text as typed."""
    try:
        replace_settings_yaml(db, spec, state.settings)
    except SpecError as err:
        return settings_page(request, login, db, state, text=spec, problems=err.listed())
    return RedirectResponse(f"{PREFIX}/settings?saved=1", status_code=303)


@router.post("/check")
def check(request: Request, login: LoginDep, state: StateDep, spec: SpecText = "") -> Response:
    """The htmx Check button: the same checks, nothing stored; the problems fragment."""
    try:
        settings_from_yaml(spec, state.settings)
    except SpecError as err:
        return page(request, "settings_check.html", login, problems=err.listed())
    return page(request, "settings_check.html", login, problems=[])
