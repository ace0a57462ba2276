"""How much an image import may write: one cap for the image and the upload, and free space.

A bundle is hostile until checked, and a few KB of zstd can decompress to terabytes, so the
bytes are bounded before they are written, not after: the image's declared size against
the cap and the free space, the upload and the decompressed stream against the cap.
"""

from __future__ import annotations

import os
from pathlib import Path

from livestrap.errors import ArchiveError, StoreError

MAX_IMAGE_ENV = "LIVESTRAP_MAX_IMPORT_BYTES"  # also the upload cap (master.limits)
DEFAULT_MAX_IMAGE_BYTES = 16 << 30  # a discovery image is ~0.5 GB; room for big ones
FREE_RESERVE_BYTES = 256 << 20  # left free after an import, for the database and logs


class InsufficientSpace(StoreError):
    """Not enough free space for what an operation would write (the API answers 507)."""


def parse_size(raw: str) -> int:
    """A positive byte count: digits with an optional K/M/G/T suffix (16G, 1048576)."""
    raw = raw.strip()
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    scale = units.get(raw[-1:].upper(), 1)
    digits = raw[:-1] if raw[-1:].upper() in units else raw
    if not (digits.isascii() and digits.isdigit()) or len(digits) > 15 or int(digits) == 0:
        raise StoreError(f"{raw[:40]!r}: expected a size such as 16G or 17179869184")
    return int(digits) * scale


def max_image_bytes(environ: dict[str, str] | None = None) -> int:
    """The cap: LIVESTRAP_MAX_IMPORT_BYTES (bytes, or with a K/M/G/T suffix) or 16 GiB.
    (The master takes its own from its settings, which may also come from its config file.)"""
    raw = (os.environ if environ is None else environ).get(MAX_IMAGE_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_BYTES
    try:
        return parse_size(raw)
    except StoreError as err:
        raise StoreError(f"{MAX_IMAGE_ENV}={err}") from None


def check_image_size(total: int, cap: int) -> None:
    if total > cap:
        raise ArchiveError(
            f"bundle declares an image of {total} bytes; the limit is {cap} ({MAX_IMAGE_ENV})"
        )


def check_free_space(where: Path, need: int) -> None:
    """Refuse before writing `need` bytes under `where` if that would fill its filesystem."""
    try:
        st = os.statvfs(where)
    except OSError as err:
        raise StoreError(f"cannot check free space in {where}: {err.strerror}") from None
    free = st.f_bavail * st.f_frsize
    if free < need + FREE_RESERVE_BYTES:
        raise InsufficientSpace(
            f"not enough free space in {where}: {need} bytes needed, {free} free "
            f"({FREE_RESERVE_BYTES} are kept free)"
        )
