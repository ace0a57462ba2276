"""POST /api/v1/discovery: agents register and heartbeat here with the discovery token.

Not an admin route: the token is the one on the nodes' kernel command line, so it is
public (GET /boot/ipxe prints it); it stops accidents, not attackers. The token is
checked first (a header: nothing read yet). Each client address gets a rate limit for
reports with the token and a smaller one of its own for refused reports (429 +
Retry-After), so a flood without the token from a shared NAT address does not spend the
bucket its real nodes share; then a quota of new nodes. A refused report is answered 401
and counted in memory into a `refused` boot event (one per address, reason and MAC per
window, written every few seconds: master.refusals), so an operator can see a node
booting with a stale token and a flood costs no database write per request. Reports
are applied by one writer thread in
batched transactions, so the master keeps up with thousands of agents a minute on
SQLite (master.report_writer); see master.inventory for the rules.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import APIRouter, HTTPException, Request, Response, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from livestrap.master.deps import StateDep, client_ip, credentials, discovery_bearer
from livestrap.master.errors import validation_details
from livestrap.master.events import normalize_mac
from livestrap.master.guards import too_many
from livestrap.master.inventory import report_of
from livestrap.master.limits import BodyTooLarge
from livestrap.master.ratelimit import address_key, retry_after
from livestrap.master.schemas.nodes import (
    DiscoveryReport,
    ErrorDetail,
    ReportAnswer,
)
from livestrap.master.state import AppState
from livestrap.master.tokens import token_matches

log = logging.getLogger("livestrap.master")


class DiscoveryRoute(APIRoute):
    """The token is checked before the body is read: FastAPI parses a body before it runs
    dependencies, and an anonymous client must not make the master buffer one.

    Every invalid body is a 422 that never echoes its input (NaN, Infinity or a lone
    surrogate, which Python's JSON accepts, cannot leave in a JSON answer), and so is a
    body Python's parser gives up on (nested past its recursion limit, an integer of
    more than 4,300 digits, bytes that are not UTF-8).
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            state = request.app.state.livestrap
            await require_discovery_token(request, state)
            limit_discovery(request, state)
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return JSONResponse({"detail": validation_details(exc)}, status_code=422)
            except StarletteHTTPException as exc:  # FastAPI's "error parsing the body"
                cause = exc.__cause__
                if exc.status_code != 400 or not isinstance(cause, ValueError | RecursionError):
                    raise
                detail = f"body is not JSON this master reads: {_reason(cause)}"
                return JSONResponse({"detail": detail}, status_code=422)

        return guarded


def _reason(err: BaseException) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return str(err).encode("ascii", "backslashreplace").decode()[:200]


router = APIRouter(tags=["discovery"], route_class=DiscoveryRoute)


HINT_BYTES = 4096  # of a refused body: enough for the agent's boot_mac and image_id
_HINT_RE = re.compile(rb'"(boot_mac|image_id)"\s*:\s*("(?:[^"\\\n]|\\.){0,200}")')


async def _body_prefix(request: Request, limit: int = HINT_BYTES) -> bytes:
    """At most about `limit` bytes of the body; the rest is never read."""
    prefix = b""
    try:
        async for chunk in request.stream():
            prefix += chunk[: limit - len(prefix)]
            if len(prefix) >= limit:
                break
    except (ClientDisconnect, BodyTooLarge):
        pass  # the refusal is answered and recorded all the same
    return prefix


def _hints(prefix: bytes) -> tuple[str | None, str | None]:
    """boot_mac and image_id of a refused body, when its first bytes name them (the
    agent sends both before its facts). Taken from a prefix, so never parsed whole."""
    found: dict[bytes, Any] = {}
    for match in _HINT_RE.finditer(prefix):
        try:
            found.setdefault(match.group(1), json.loads(match.group(2)))
        except ValueError:
            continue
    mac, image = found.get(b"boot_mac"), found.get(b"image_id")
    mac = normalize_mac(mac) if isinstance(mac, str) else None
    image = image if isinstance(image, str) and len(image) <= 100 and image.isprintable() else None
    return mac, image


def limit_discovery(request: Request, state: AppState) -> None:
    """429 when this address sent more reports with the token than its bucket holds
    (nothing read or stored); DiscoveryRoute calls this after the token check."""
    wait = state.guards.discovery.take(address_key(client_ip(request)))
    if wait > 0:
        state.metrics.refuse("rate limited")
        raise too_many(wait, "discovery reports")


async def require_discovery_token(request: Request, state: AppState) -> None:
    """401 + a counted `refused` event unless the bearer token is the discovery token;
    refused reports have their own bucket per address (429 beyond it, nothing read), and
    of a refused body only its first HINT_BYTES are read (DiscoveryRoute calls this
    first)."""
    given = credentials(await discovery_bearer(request))
    if token_matches(given, state.discovery_token):
        return
    ip = client_ip(request)
    wait = state.guards.refused.take(address_key(ip))
    if wait > 0:
        state.metrics.refuse("rate limited")
        raise too_many(wait, "refused discovery reports")
    reason = "no discovery token" if given is None else "wrong discovery token"
    state.metrics.refuse("no token" if given is None else "wrong token")
    mac, image = _hints(await _body_prefix(request))
    state.guards.refusals.record(reason, ip, mac, image)  # in memory: no database write
    raise HTTPException(
        status_code=401,
        detail=f"{reason}: boot with livestrap.token=<data-dir>/discovery.token",
        headers={"WWW-Authenticate": "Bearer"},
    )


@router.post(
    "/discovery",
    response_model=ReportAnswer,
    status_code=200,
    responses={
        201: {"model": ReportAnswer, "description": "A new node was registered."},
        401: {
            "model": ErrorDetail,
            "description": "Missing or wrong discovery token (recorded as `refused`).",
        },
        413: {"model": ErrorDetail, "description": "Body over the master's cap."},
        429: {
            "model": ErrorDetail,
            "description": "Too many reports, or new nodes, from this address; or the report "
            "looks like an online node after a reboot (Retry-After: until it shows offline).",
        },
    },
    summary="Agent report: register a node (with facts) or heartbeat (without)",
    # declares the discovery token in OpenAPI; the check itself is DiscoveryRoute's, which
    # runs before the body is read (a dependency would run after)
    dependencies=[Security(discovery_bearer)],
)
async def submit_report(
    body: DiscoveryReport, request: Request, response: Response, state: StateDep
) -> ReportAnswer:
    """Validated here on the event loop; applied by the report writer (one thread,
    batched transactions: master.report_writer)."""
    outcome = await state.reports.submit(report_of(body), client_ip(request))
    if outcome.retry_after_s > 0:
        state.metrics.refuse("rebooted" if outcome.reason else "new-node quota")
    else:
        state.metrics.reports.labels("heartbeat" if body.facts is None else "report").inc()
    if outcome.retry_after_s > 0 and outcome.reason:
        wait = retry_after(outcome.retry_after_s)
        detail = f"{outcome.reason}: retry in {wait} s (docs/security.md)"
        raise HTTPException(status_code=429, detail=detail, headers={"Retry-After": wait})
    if outcome.retry_after_s > 0:
        raise too_many(outcome.retry_after_s, "new nodes")
    if outcome.created:
        response.status_code = 201
    return ReportAnswer(
        node_id=outcome.node_id,
        heartbeat_s=state.settings.heartbeat_s,
        facts_required=outcome.facts_required,
        actions=list(outcome.actions),
    )
