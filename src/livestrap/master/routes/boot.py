"""/boot: what a netbooting node fetches. Open, like any netboot server (DESIGN §6-7).

Every request that starts a step of a boot is written to the boot timeline against the
node's MAC (from the query or the path) and its IP, in one short transaction of its own:
a failing event write is logged and the boot goes on. Open means abusable: each client
address has a request budget (429 + Retry-After beyond it), each MAC an event budget per
client address (events beyond it are counted into one `suppressed` event; the file is
still served), and history is bounded per node and MAC (master.guards, master.history).
nginx's notices of its own transfers are master.routes.boot_notices. A rack cache's
upstream fetch (X-Livestrap-Cache-Fill) leaves no event: the cache reports each node's
download itself; its boot scripts point the nodes back at it (X-Livestrap-Rack).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.background import BackgroundTask

from livestrap import bootpaths
from livestrap.errors import LivestrapError
from livestrap.master.accel import ACCEL_HEADER, accel_prefix, accel_response
from livestrap.master.artifacts import (
    ArtifactFile,
    ArtifactResponse,
    ByteRange,
    RangeNotSatisfiable,
    SentCallback,
    choose_range,
    etag_matches,
    find_artifact,
    image_metadata,
    not_modified,
    parse_range,
    range_not_satisfiable,
)
from livestrap.master.deps import StateDep, client_ip
from livestrap.master.guards import too_many
from livestrap.master.ipxe import (
    check_base_url,
    render_boot_script,
    render_low_memory_script,
    render_no_image_script,
)
from livestrap.master.ratelimit import address_key
from livestrap.master.services.boot_events import record_boot_event
from livestrap.master.services.boot_ram import node_ram_mib
from livestrap.master.state import AppState

log = logging.getLogger(__name__)
router = APIRouter(prefix=bootpaths.PREFIX, tags=["boot"])

START_KIND = {
    bootpaths.KERNEL: "kernel",
    bootpaths.INITRD: "initrd",
    bootpaths.SQUASHFS: "squashfs-start",
}
UNUSABLE = "the active image on the master is unusable (see the master's log)"
ARTIFACT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/octet-stream": {}}, "description": "The file."},
    206: {"description": "One byte range of the file (Range: bytes=a-b, a- or -n)."},
    304: {"description": "If-None-Match matched the file's ETag (its sha256)."},
    404: {"description": "No such image or file."},
    416: {"description": "The range lies outside the file."},
    429: {"description": "Too many /boot requests from this address (Retry-After)."},
}


async def limit_boot(request: Request, state: StateDep) -> None:
    """429 when this address sent more /boot requests than its bucket holds."""
    take_budget(state, client_ip(request))


BootLimited = [Depends(limit_boot)]
FILE_SUMMARY = "Boot file of an image (kernel, initrd, squashfs)"
MAC_FILE_SUMMARY = "Boot file of an image, the node's MAC in the path"
Endpoint = TypeVar("Endpoint", bound=Callable[..., Any])


def file_route(path: str, summary: str) -> Callable[[Endpoint], Endpoint]:
    """One function for a boot file's HEAD and GET routes (the OpenAPI document names
    them headArtifact and artifact: master.apidocs.operation_id)."""

    def register(endpoint: Endpoint) -> Endpoint:
        for add in (router.head, router.get):
            add(path, responses=ARTIFACT_RESPONSES, dependencies=BootLimited, summary=summary)(
                endpoint
            )
        return endpoint

    return register


def _record(state: AppState, kind: str, **fields: Any) -> None:
    record_boot_event(state.db, state.guards, kind, **fields)


def _base_url(state: AppState, request: Request) -> str:
    """How nodes reach us: the rack cache they came through, else the configured public
    URL, else what the client asked for. Anyone may name a "rack cache": it only changes
    the URLs in the script that client itself gets (never cached, like every script)."""
    rack = request.headers.get(bootpaths.RACK_HEADER)
    try:
        return check_base_url(rack or state.settings.public_url or str(request.base_url))
    except ValueError as err:
        raise HTTPException(status_code=400, detail=str(err)) from None


def _script(state: AppState, base: str, mac: str | None) -> tuple[str | None, str, dict[str, Any]]:
    """(id of the image the script boots or None, the script, what the timeline notes)."""
    retry_s = state.settings.boot_retry_s
    try:
        image_id = state.store.active_id()
        if image_id is None:
            return None, render_no_image_script(retry_s, base), {"retry_s": retry_s}
        meta = image_metadata(state.store, image_id)
        need = meta.boot_ram_mb
        has = node_ram_mib(state.db, mac) if need else None
        if need and has is not None and has < need:  # a known node too small for it
            script = render_low_memory_script(base, image_id, need, has, retry_s)
            return None, script, {"retry_s": retry_s, "needs_mib": need, "has_mib": has}
        script = render_boot_script(
            base, image_id, state.discovery_token, meta.kernel_cmdline, retry_s=retry_s
        )
    except (LivestrapError, ValueError) as err:
        log.error("cannot boot the active image: %s", err)
        return None, render_no_image_script(retry_s, base, UNUSABLE), {"retry_s": retry_s}
    return image_id, script, {}


@router.get(
    bootpaths.SCRIPT_ROUTE,
    response_class=PlainTextResponse,
    dependencies=BootLimited,
    responses={429: ARTIFACT_RESPONSES[429]},
)
def boot_script(request: Request, state: StateDep, mac: str | None = None) -> PlainTextResponse:
    """The iPXE script for the active image, or one that waits and asks again (also for
    a known node whose last report shows less RAM than the image's boot_ram_mb)."""
    image_id, script, detail = _script(state, _base_url(state, request), mac)
    _record(state, "script", mac=mac, ip=client_ip(request), image_id=image_id, detail=detail)
    return PlainTextResponse(script, headers={"cache-control": "no-store"})


def _serve(
    state: AppState, request: Request, image_id: str, name: str, mac: str | None
) -> Response:
    art = find_artifact(state.store, image_id, name)
    prefix = accel_prefix(request.headers.get(ACCEL_HEADER))
    if prefix is not None:
        return _hand_off(state, request, art, prefix, mac)
    if etag_matches(request.headers.get("if-none-match"), art.etag):
        return not_modified(art)
    try:
        byte_range = choose_range(request.headers, art)
    except RangeNotSatisfiable:
        return range_not_satisfiable(art)
    if request.method == "HEAD":  # no download starts: nothing for the timeline
        return ArtifactResponse(art, byte_range)
    if bootpaths.FILL_HEADER in request.headers:  # a rack cache fills itself: no node's event
        state.metrics.cache_fill(art.name)
        return ArtifactResponse(art, byte_range)
    return ArtifactResponse(art, byte_range, _record_download(state, request, art, byte_range, mac))


def _hand_off(
    state: AppState, request: Request, art: ArtifactFile, prefix: str, mac: str | None
) -> Response:
    """nginx in front sends the file. The start is recorded (unless nginx will answer
    416, or it is a HEAD) after the answer went out, stamped with the time it came in:
    when a fleet boots at once, every download waits for this answer, not for the event
    write. The end comes from nginx afterwards (see master/accel.py)."""
    response = accel_response(art, prefix)
    if request.method != "HEAD":
        try:
            byte_range = parse_range(request.headers.get("range"), art.size)
        except RangeNotSatisfiable:
            return response
        response.background = BackgroundTask(
            _record_download, state, request, art, byte_range, mac, time.time()
        )
    return response


def _record_download(
    state: AppState,
    request: Request,
    art: ArtifactFile,
    byte_range: ByteRange | None,
    mac: str | None,
    at: float | None = None,
) -> SentCallback | None:
    """Record the start now; for the squashfs return the callback that records its end."""
    fields: dict[str, Any] = {"mac": mac, "ip": client_ip(request), "image_id": art.image_id}
    detail: dict[str, Any] = {}
    expected = art.size
    if byte_range is not None:
        detail["range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        expected = byte_range[1] - byte_range[0] + 1
    _record(state, START_KIND[art.name], detail=detail, at=at, **fields)
    if art.name != bootpaths.SQUASHFS:
        return None

    def on_sent(sent: int, seconds: float) -> None:
        end = {**detail, "bytes": sent, "seconds": round(seconds, 3), "complete": sent == expected}
        _record(state, "squashfs-end", detail=end, **fields)

    return on_sent


@file_route(bootpaths.FILE_ROUTE, FILE_SUMMARY)
def artifact(
    image_id: str, name: str, request: Request, state: StateDep, mac: str | None = None
) -> Response:
    """vmlinuz, initrd.img or root.squashfs of an image; `mac` names the node (timeline)."""
    return _serve(state, request, image_id, name, mac)


@file_route(bootpaths.MAC_FILE_ROUTE, MAC_FILE_SUMMARY)
def artifact_for_mac(
    node_mac: str, image_id: str, name: str, request: Request, state: StateDep
) -> Response:
    """The same files, the node's MAC in the path: live-boot's fetch= allows no query."""
    return _serve(state, request, image_id, name, node_mac)


def take_budget(state: AppState, ip: str | None) -> None:
    """One /boot request of this address's budget; 429 when it is spent."""
    wait = state.guards.boot.take(address_key(ip))
    if wait > 0:
        raise too_many(wait, "/boot requests")
