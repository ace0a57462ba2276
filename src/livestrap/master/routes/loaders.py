"""/boot/efi/NAME: the EFI boot loaders UEFI HTTP boot firmware is pointed at.

DHCP (netboot.dnsmasq) hands an `HTTPClient` the URL of Debian's `ipxe.efi` here; that
iPXE then asks DHCP again as iPXE and gets the script (/boot/ipxe). Only the names in
LOADERS are served, from the `ipxe_dir` setting: the request's name picks an entry of the
allow-list and is never joined to a path. The files are the host's, so they may change
under us (a package upgrade): the ETag is their sha256, computed once per version of the
file. Firmware sends no MAC, so the `loader` event carries the client's IP only; the
script request that follows from that IP gives it its MAC (services.boot_events).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, Response

from livestrap import bootpaths
from livestrap.errors import ImageNotFound
from livestrap.master.artifacts import (
    ArtifactFile,
    ArtifactResponse,
    RangeNotSatisfiable,
    choose_range,
    etag_matches,
    not_modified,
    range_not_satisfiable,
)
from livestrap.master.deps import StateDep, client_ip
from livestrap.master.routes.boot import ARTIFACT_RESPONSES, BootLimited
from livestrap.master.services.boot_events import record_boot_event

router = APIRouter(prefix=bootpaths.PREFIX, tags=["boot"])

LOADERS = ("ipxe.efi", "snponly.efi")  # Debian's ipxe package: iPXE with all drivers, SNP only
EFI_MEDIA_TYPE = "application/efi"  # what EDK2's HTTP boot checks first (then the .efi suffix)
LOADER_RESPONSES = {**ARTIFACT_RESPONSES, 404: {"description": "Not one of the loaders, "
                    "or not installed on the master's host."}}  # fmt: skip
_DIGESTS: dict[tuple[str, int, int, int], str] = {}
_DIGESTS_MAX = 16


def _digest(path: Path, st: os.stat_result) -> str:
    key = (str(path), st.st_ino, st.st_mtime_ns, st.st_size)
    found = _DIGESTS.get(key)
    if found is None:
        sha = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
        found = sha.hexdigest()
        if len(_DIGESTS) >= _DIGESTS_MAX:
            _DIGESTS.clear()
        _DIGESTS[key] = found
    return found


def find_loader(ipxe_dir: Path, name: str) -> ArtifactFile:
    """The loader `name` names, as an ArtifactFile (no image: image_id is empty). Symlinks
    are followed (Debian's ipxe.efi is one, to /boot): the directory is the operator's."""
    known = {n: n for n in LOADERS}.get(name)
    if known is None:
        raise ImageNotFound(f"no loader {name!r}: one of {', '.join(LOADERS)}")
    path = ipxe_dir / known
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ImageNotFound(f"{known} is not a regular file on the master")
        etag = f'"{_digest(path, st)}"'
    except OSError:
        raise ImageNotFound(f"{known} is not on the master (apt-get install ipxe)") from None
    return ArtifactFile("", known, path, st, etag)


def efi_loader(name: str, request: Request, state: StateDep) -> Response:
    """ipxe.efi or snponly.efi from the master's host (the `ipxe_dir` setting)."""
    art = find_loader(state.settings.ipxe_dir, name)
    if etag_matches(request.headers.get("if-none-match"), art.etag):
        return not_modified(art)
    try:
        byte_range = choose_range(request.headers, art)
    except RangeNotSatisfiable:
        return range_not_satisfiable(art)
    if request.method != "HEAD":  # EDK2 asks HEAD first, for the size: not a boot step
        detail: dict[str, Any] = {"name": art.name}
        if byte_range is not None:
            detail["range"] = f"bytes={byte_range[0]}-{byte_range[1]}"
        record_boot_event(state.db, state.guards, "loader", ip=client_ip(request), detail=detail)
    response = ArtifactResponse(art, byte_range)
    response.headers["content-type"] = EFI_MEDIA_TYPE
    return response


for _add in (router.head, router.get):
    _add(bootpaths.LOADER_ROUTE, responses=LOADER_RESPONSES, dependencies=BootLimited,
         summary="EFI boot loader for UEFI HTTP boot (Debian's iPXE)")(efi_loader)  # fmt: skip
