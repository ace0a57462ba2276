"""nginx in front of the master (`livestrap netboot nginx-config`): the master keeps every
decision about an artifact request and writes the boot timeline, nginx sends the bytes.

A Python server copies each byte through user space; nginx hands file pages to the
socket (sendfile). So for /boot artifact requests nginx adds the header `X-Livestrap-Accel:
<internal prefix>`; the master validates the request as usual, records the start event
and answers with `X-Accel-Redirect: <prefix><image id>/<name>` and no body; nginx then
serves that file from the image store (ranges, conditionals included). When the transfer
is over, nginx's `post_action` tells the master how it went (`POST /boot/nginx/sent`),
which becomes the squashfs-end event, as when the master sends the file itself. That
notice carries the node's address in X-Livestrap-Client and no X-Forwarded-For, and the
master takes it only from 127.0.0.1 or ::1 (master.routes.boot_notices).

Anyone may send the accel header to the master directly; all they get is an empty answer
naming a file they could download anyway, and a timeline entry — /boot is open by design.
"""

from __future__ import annotations

import re

from fastapi import Response

from livestrap.master.artifacts import ArtifactFile

ACCEL_HEADER = "x-livestrap-accel"
CLIENT_HEADER = "x-livestrap-client"  # the node's address, in nginx's notice
_PREFIX_RE = re.compile(r"^/[A-Za-z0-9_./-]*/\Z")


def accel_prefix(value: str | None) -> str | None:
    """The internal location nginx serves the store's images/ under, if it asked for a
    hand-off; a malformed prefix is ignored (the master then sends the file itself)."""
    if not value or ".." in value or not _PREFIX_RE.match(value):
        return None
    return value


def accel_response(art: ArtifactFile, prefix: str) -> Response:
    """No body: nginx sends images/<id>/<name> itself."""
    return Response(
        status_code=200,
        headers={
            "x-accel-redirect": f"{prefix}{art.image_id}/{art.name}",
            "cache-control": "no-store",
        },
    )
