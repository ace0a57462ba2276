"""/ui/nodes/{id}/actions: queue a node action from the node's page (a plain form with
the CSRF field, as every console form). HTTP only: the queue is master.services.actions;
the node page lists the actions (console.nodes)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from livestrap.errors import LivestrapError
from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.nodes import problem
from livestrap.master.deps import SessionDep
from livestrap.master.errors import status_for
from livestrap.master.schemas.actions import KINDS, package_words
from livestrap.master.services import actions as service
from livestrap.master.services import nodes as nodes_service

MAX_PACKAGES_TEXT = 8192  # the form's packages field
router = APIRouter(prefix=PREFIX, dependencies=CONSOLE_GUARDS, include_in_schema=False)


def _refused(err: ValidationError) -> str:
    """pydantic's errors as one line, each naming its field."""
    return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())


@router.post("/nodes/{node_id}/actions")
async def queue_action(node_id: str, request: Request, login: LoginDep, db: SessionDep) -> Response:
    """kind = install (packages: `PKG[=VERSION]` words), reinspect, reboot or poweroff;
    back to the node's page, where the action shows queued."""
    form = await request.form()
    kind, text = form.get("kind"), form.get("packages") or ""
    if not isinstance(kind, str) or kind not in KINDS:
        return problem(request, login, 422, f"kind: expected one of {', '.join(KINDS)}")
    if not isinstance(text, str) or len(text) > MAX_PACKAGES_TEXT:
        return problem(request, login, 422, "packages: too long")
    try:
        node = nodes_service.node_id(db, node_id[:100])
        args = {"packages": package_words(text.replace(",", " ").split())}
        service.queue_action(db, node, kind, args if kind == "install" else {}, "console")
    except ValidationError as err:
        return problem(request, login, 422, f"Not queued: {_refused(err)}")
    except LivestrapError as err:
        return problem(request, login, status_for(err), str(err))
    except ValueError as err:
        return problem(request, login, 422, f"Not queued: packages: {err}")
    return RedirectResponse(f"{PREFIX}/nodes/{node}#actions", status_code=303)
