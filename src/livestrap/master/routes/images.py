"""/api/v1/images: the store over HTTP — what `livestrap images ...` does on the master host.

Bundles (export, import) go through master.download and master.upload, which the console
uses too: streamed through `<data-dir>/tmp`, removed as soon as the request is done with
them (master.services.bundles). Import
checks happen in store.bundle: a refused bundle is a 422 naming the member, and the store
is left as it was.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request, Response
from fastapi.responses import FileResponse

from livestrap.lspci import LspciError, devices_from_facts, parse_lspci
from livestrap.master.deps import AdminOnly, SessionDep, StateDep
from livestrap.master.download import TempFileResponse, bundle_download
from livestrap.master.schemas.drivers import DriverCheck, DriverCheckRequest, ImageDrivers
from livestrap.master.schemas.images import (
    Activated,
    ImageDetail,
    ImageDiff,
    ImageSummary,
    ImageVerified,
)
from livestrap.master.services.bundles import MEDIA_TYPE, resolve_image
from livestrap.master.services.drivers import check_image, image_drivers
from livestrap.master.services.images import (
    activate,
    image_detail,
    image_diff,
    image_summary,
    info_of,
)
from livestrap.master.services.nodes import find_node
from livestrap.master.upload import import_upload
from livestrap.store.bundle import Compression
from livestrap.store.manifest import SBOM_MEDIA_TYPE

router = APIRouter(dependencies=[AdminOnly], tags=["images"])

BUNDLE_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}
IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A bundle made by export (any compression), as the raw body or a "
        "multipart `file` field.",
        "content": {
            "application/octet-stream": {"schema": BUNDLE_SCHEMA},
            "multipart/form-data": {
                "schema": {"type": "object", "properties": {"file": BUNDLE_SCHEMA}}
            },
        },
    }
}


@router.get("/images", response_model=list[ImageSummary])
def list_images(state: StateDep) -> list[ImageSummary]:
    """Every image, oldest first, and which one is active."""
    return [image_summary(info) for info in state.store.list()]


@router.get("/images/{image_id}", response_model=ImageDetail)
def show_image(image_id: str, state: StateDep) -> ImageDetail:
    """An image's full metadata (spec, packages, artifact checksums, ...)."""
    meta = state.store.get(resolve_image(state.store, image_id))
    return image_detail(meta, state.store.active_id())


@router.get("/images/{a}/diff/{b}", response_model=ImageDiff)
def diff_images(a: str, b: str, state: StateDep) -> ImageDiff:
    """Packages added, removed and changed in version going from image a to image b."""
    a, b = resolve_image(state.store, a), resolve_image(state.store, b)
    return image_diff(a, b, state.store.diff(a, b))


@router.get(
    "/images/{image_id}/sbom",
    response_class=Response,
    responses={
        200: {"content": {SBOM_MEDIA_TYPE: {"schema": {"type": "object"}}}},
        404: {"description": "No such image, or one built before images had an SBOM."},
        409: {"description": "The SBOM does not match its recorded sha256."},
    },
)
def image_sbom(image_id: str, state: StateDep) -> Response:
    """The image's SBOM: CycloneDX 1.5 JSON, one component per installed package."""
    data = state.store.sbom(resolve_image(state.store, image_id))
    return Response(data, media_type=SBOM_MEDIA_TYPE)


NO_COVERAGE: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such image (or node)."},
    409: {"description": "An image built before images recorded their driver coverage."},
}


@router.get("/images/{image_id}/drivers", response_model=ImageDrivers, responses=NO_COVERAGE)
def image_driver_classes(image_id: str, state: StateDep) -> ImageDrivers:
    """Which PCI device classes the image's kernel modules can drive, NICs and storage
    first, and the firmware files its modules name that it lacks (from metadata.yaml)."""
    return image_drivers(state.store.get(resolve_image(state.store, image_id)))


@router.post(
    "/images/{image_id}/drivers/check",
    response_model=DriverCheck,
    responses={**NO_COVERAGE, 422: {"description": "Not lspci output of a known form."}},
)
def check_drivers(
    image_id: str, state: StateDep, session: SessionDep, body: Annotated[DriverCheckRequest, Body()]
) -> DriverCheck:
    """Every PCI device of a machine (`lspci` text, or a registered node's reported PCI
    facts) against the image: ok, no-driver or no-firmware; NICs and storage first."""
    meta = state.store.get(resolve_image(state.store, image_id))
    if body.node is not None:
        node = find_node(session, body.node)
        facts = node.facts if isinstance(node.facts, dict) else {}
        return check_image(meta, devices_from_facts(facts.get("pci")))
    try:
        devices = parse_lspci(body.lspci or "")
    except LspciError as err:
        raise HTTPException(status_code=422, detail=str(err)) from None
    return check_image(meta, devices)


@router.post("/images/{image_id}/verify", response_model=ImageVerified)
def verify_image(image_id: str, state: StateDep) -> ImageVerified:
    """Recompute every artifact's sha256 against metadata.yaml (reads the whole image)."""
    image_id = resolve_image(state.store, image_id)
    files = state.store.verify(image_id)
    return ImageVerified(id=image_id, ok=all(v == "ok" for v in files.values()), files=files)


@router.post("/images/{image_id}/activate", response_model=Activated)
def activate_image(image_id: str, state: StateDep, session: SessionDep) -> Activated:
    """Make the image the one nodes boot from their next /boot/ipxe on."""
    image_id = resolve_image(state.store, image_id)
    activate(state.store, session, image_id, "api")
    return Activated(active=image_id)


@router.delete("/images/{image_id}", status_code=204, responses={409: {"description": "Active."}})
def delete_image(image_id: str, state: StateDep) -> Response:
    """Delete an image; the active one is refused (409): activate another first."""
    state.store.delete(resolve_image(state.store, image_id))
    return Response(status_code=204)


@router.get(
    "/images/{image_id}/export",
    response_class=FileResponse,
    responses={200: {"content": {m: {"schema": BUNDLE_SCHEMA} for m in MEDIA_TYPE.values()}}},
)
def export_bundle(
    image_id: str, state: StateDep, compression: Compression = "zst"
) -> TempFileResponse:
    """Download the image as a bundle (tar of its directory) for `images import` elsewhere."""
    return bundle_download(state.store, image_id, compression)


@router.post(
    "/images/import",
    status_code=201,
    response_model=ImageSummary,
    openapi_extra=IMPORT_BODY,
    responses={
        409: {"description": "Already in the store."},
        413: {"description": "Over the import limit (LIVESTRAP_MAX_IMPORT_BYTES)."},
        422: {"description": "Refused."},
        507: {"description": "Not enough free space."},
    },
)
async def import_bundle(request: Request, state: StateDep) -> ImageSummary:
    """Add the image in an uploaded bundle, after checking every member and checksum."""
    meta = await import_upload(request, state.store, state.settings.max_import_bytes)
    return image_summary(info_of(meta, state.store.active_id()))
