"""POST /boot/nginx/sent: nginx tells the master of a transfer it made, for the timeline.

Three senders (netboot.nginx, netboot.rackcache):
- nginx in front, after an X-Accel-Redirect hand-off: the end (the master wrote the start);
- nginx in front in direct mode, and a rack cache: the whole transfer once it is over
  (X-Livestrap-Phase: whole): the start, stamped X-Request-Time before now, and the end.
The notice names the node's address in X-Livestrap-Client. It is taken from nginx on this
host (a peer of 127.0.0.1 or ::1 with no X-Forwarded-For: through nginx's /boot/ location
the peer is the client's) or from a peer among LIVESTRAP_TRUSTED_PROXIES (a rack cache,
possibly through a load balancer that uvicorn trusts); anyone else gets 403, after the
sender's /boot budget, so a flood of forgeries is also a 429.
"""

from __future__ import annotations

import ipaddress
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Request, Response

from livestrap import bootpaths
from livestrap.errors import ImageNotFound
from livestrap.master.accel import CLIENT_HEADER
from livestrap.master.artifacts import RangeNotSatisfiable, find_artifact, parse_range
from livestrap.master.deps import StateDep, client_ip
from livestrap.master.routes.boot import START_KIND, take_budget
from livestrap.master.services.boot_events import record_boot_event
from livestrap.master.state import AppState

router = APIRouter(prefix=bootpaths.PREFIX, tags=["boot"])
NGINX_PEERS = frozenset({"127.0.0.1", "::1"})  # where the rendered nginx site connects from


def _ip(text: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text) if text else None
    except ValueError:
        return None


def _trusted(state: AppState, peer: str | None) -> bool:
    """A peer among the trusted proxies, other than this host ("*" trusts no one here:
    with it, any client could name any address in X-Forwarded-For). 127.0.0.1 or ::1
    with X-Forwarded-For is a client of nginx on this host, not nginx itself."""
    address = _ip(peer)
    if address is None or peer in NGINX_PEERS:
        return False
    for item in state.settings.trusted_proxies:
        if item != "*" and address in ipaddress.ip_network(item, strict=False):
            return True
    return False


def from_nginx(request: Request, state: AppState) -> str | None:
    """The node's address when the notice comes from a sender we trust; 403 otherwise."""
    peer = client_ip(request)
    local = peer in NGINX_PEERS and "x-forwarded-for" not in request.headers
    if not local and not _trusted(state, peer):
        take_budget(state, peer)
        raise HTTPException(status_code=403, detail="only nginx or a rack cache sends this")
    node = request.headers.get(CLIENT_HEADER)
    node = node if _ip(node) is not None else None
    take_budget(state, node or peer)
    return node


@router.post(
    bootpaths.SENT_ROUTE, status_code=204, response_class=Response, include_in_schema=False
)
def nginx_sent(
    request: Request,
    state: StateDep,
    x_original_uri: Annotated[str, Header(max_length=2048)],
    x_bytes_sent: Annotated[int, Header(ge=0)],
    x_request_time: Annotated[float, Header(ge=0, allow_inf_nan=False)] = 0.0,
    x_request_completion: Annotated[str, Header(max_length=16)] = "",
    x_livestrap_phase: Annotated[Literal["whole", "end"], Header()] = "end",
    x_livestrap_via: Annotated[Literal["nginx", "rack"], Header()] = "nginx",
    x_original_method: Annotated[str, Header(max_length=16)] = "GET",
    x_original_status: Annotated[int, Header(ge=100, le=999)] = 200,
) -> Response:
    """The end of a squashfs transfer nginx made and, for a whole one, its start (any
    boot file). A HEAD is no download, nor is an answer other than 200 or 206 (a rack
    cache's 429, say): nothing is written."""
    node_ip = from_nginx(request, state)
    if x_original_status not in (200, 206):
        return Response(status_code=204)
    original = bootpaths.parse_file_url(x_original_uri)
    if original is None:
        raise ImageNotFound(f"not an artifact URL: {x_original_uri!r}")
    art = find_artifact(state.store, original.image_id, original.name)
    detail: dict[str, Any] = {}
    expected = art.size
    try:
        byte_range = parse_range(request.headers.get("range"), art.size)
    except RangeNotSatisfiable:
        byte_range = None
    if byte_range is not None:
        detail["range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        expected = byte_range[1] - byte_range[0] + 1
    fields: dict[str, Any] = {"mac": original.mac, "ip": node_ip, "image_id": art.image_id}
    state.metrics.sent(art.name, x_bytes_sent, via=x_livestrap_via)
    if x_original_method.upper() == "HEAD":
        return Response(status_code=204)
    if x_livestrap_phase == "whole":
        start = {**detail, "via": x_livestrap_via}
        at = time.time() - x_request_time
        record_boot_event(state.db, state.guards, START_KIND[art.name], detail=start, at=at,
                          **fields)  # fmt: skip
    if art.name == bootpaths.SQUASHFS:
        complete = x_request_completion == "OK" and x_bytes_sent == expected
        detail |= {"bytes": x_bytes_sent, "seconds": round(x_request_time, 3),
                   "complete": complete, "via": x_livestrap_via}  # fmt: skip
        record_boot_event(state.db, state.guards, "squashfs-end", detail=detail, **fields)
    return Response(status_code=204)
