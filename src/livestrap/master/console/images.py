"""/ui/images: the image store for operators — the list, one image's packages, the diff of
two, activate, delete, export, import and the SBOM. The same services as /api/v1/images (and so
the same checks: an import is master.upload.import_upload, as for the API);
a refusal is shown on a page, or in #import-result for the htmx upload, never as JSON."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from livestrap.errors import LivestrapError
from livestrap.master.console.guard import CONSOLE_GUARDS, PREFIX, LoginDep
from livestrap.master.console.render import page
from livestrap.master.console.sessions import Login
from livestrap.master.deps import SessionDep, StateDep
from livestrap.master.download import TempFileResponse, bundle_download
from livestrap.master.errors import DISK_FULL_DETAIL, disk_full, status_for
from livestrap.master.services.bundles import resolve_image
from livestrap.master.services.images import activate, image_rows
from livestrap.master.upload import import_upload
from livestrap.store.bundle import Compression
from livestrap.store.manifest import SBOM_MEDIA_TYPE

HERE = f"{PREFIX}/images"
UPLOAD_FIELD = b"bundle"  # the file input of form#import
MAX_REF_CHARS = 200  # longer than any image id (100): refused before the store sees it
router = APIRouter(prefix=HERE, dependencies=CONSOLE_GUARDS, include_in_schema=False)
ImageRef = Annotated[str, Query(max_length=MAX_REF_CHARS)]


def _refusal(err: Exception) -> tuple[int, str]:
    """The status and message the API would answer `err` with."""
    if isinstance(err, HTTPException):
        return err.status_code, str(err.detail)
    if disk_full(err):
        return 507, DISK_FULL_DETAIL
    assert isinstance(err, LivestrapError)
    return status_for(err), str(err)


def _problem(request: Request, login: Login, err: Exception) -> Response:
    """A page saying what went wrong (404 unknown image, 409 active, ...), as the API would."""
    status, message = _refusal(err)
    return page(request, "image_problem.html", login, status_code=status, section="images",
                title="Image: refused" if status != 404 else "Image: not found",
                message=message)  # fmt: skip


@router.get("")
def list_images(request: Request, login: LoginDep, state: StateDep) -> Response:
    rows = image_rows(state.store)
    return page(request, "images.html", login, title="Images", rows=rows, a="", b="", oob=False)


@router.get("/diff")
def diff_images(
    request: Request, login: LoginDep, state: StateDep, a: ImageRef = "", b: ImageRef = ""
) -> Response:
    """Packages added, removed and changed going from image a to image b."""
    rows = image_rows(state.store)
    if not a or not b:
        return page(request, "image_diff.html", login, title="Image diff", section="images",
                    rows=rows, a=a, b=b, diff=None)  # fmt: skip
    try:
        a, b = resolve_image(state.store, a), resolve_image(state.store, b)
        diff = state.store.diff(a, b)
    except LivestrapError as err:
        return _problem(request, login, err)
    return page(request, "image_diff.html", login, title="Image diff", section="images",
                rows=rows, a=a, b=b, diff=diff)  # fmt: skip


@router.get("/{image_id}")
def show_image(request: Request, login: LoginDep, state: StateDep, image_id: str) -> Response:
    try:
        meta = state.store.get(resolve_image(state.store, image_id))
    except LivestrapError as err:
        return _problem(request, login, err)
    return page(request, "image.html", login, title=f"Image {meta.id}", section="images",
                image=meta, active=meta.id == state.store.active_id(),
                packages=sorted(meta.packages.items()))  # fmt: skip


@router.post("/{image_id}/activate")
def activate_image(
    request: Request, login: LoginDep, state: StateDep, session: SessionDep, image_id: str
) -> Response:
    """Nodes boot this image from their next /boot/ipxe on."""
    try:
        image_id = resolve_image(state.store, image_id)
        activate(state.store, session, image_id, "console")
    except LivestrapError as err:
        return _problem(request, login, err)
    return RedirectResponse(f"{HERE}/{image_id}", status_code=303)


@router.post("/{image_id}/delete")
def delete_image(request: Request, login: LoginDep, state: StateDep, image_id: str) -> Response:
    """Delete an image; the store refuses the active one (409, shown with its message)."""
    try:
        state.store.delete(resolve_image(state.store, image_id))
    except LivestrapError as err:
        return _problem(request, login, err)
    return RedirectResponse(HERE, status_code=303)


@router.get("/{image_id}/export", response_model=None)
def export_image(
    request: Request, login: LoginDep, state: StateDep, image_id: str,
    compression: Compression = "zst",
) -> TempFileResponse | Response:  # fmt: skip
    """The bundle download, the same bytes as GET /api/v1/images/{id}/export."""
    try:
        return bundle_download(state.store, image_id, compression)
    except LivestrapError as err:
        return _problem(request, login, err)


@router.get("/{image_id}/sbom", response_model=None)
def image_sbom(request: Request, login: LoginDep, state: StateDep, image_id: str) -> Response:
    """The SBOM, the same bytes as GET /api/v1/images/{id}/sbom."""
    try:
        data = state.store.sbom(resolve_image(state.store, image_id))
    except LivestrapError as err:
        return _problem(request, login, err)
    return Response(data, media_type=SBOM_MEDIA_TYPE)


@router.post("/import")
async def import_image(request: Request, login: LoginDep, state: StateDep) -> Response:
    """The htmx upload of form#import: the outcome goes into #import-result. The same
    checks as POST /api/v1/images/import; a refusal keeps its status (422 names the member)."""
    cap = state.settings.max_import_bytes
    try:
        meta = await import_upload(request, state.store, cap, UPLOAD_FIELD)
    except (HTTPException, LivestrapError, OSError) as err:
        if isinstance(err, OSError) and not disk_full(err):
            raise
        status, message = _refusal(err)
        return page(request, "partials/import_result.html", login, status_code=status,
                    section="images", imported=None, message=message, rows=[])  # fmt: skip
    return page(request, "partials/import_result.html", login, status_code=201,
                section="images", imported=meta, message="",
                rows=image_rows(state.store))  # fmt: skip
