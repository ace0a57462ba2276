"""Reproducible images: the same resolved inputs give the same bytes.

Every timestamp the build writes is SOURCE_DATE_EPOCH, derived from the inputs: the newest
`Date:` among the sources' InRelease files (they are part of the inputs hash, so the same
inputs always give the same epoch). mmdebstrap, mkinitramfs (cpio --reproducible, single
threaded zstd, mtimes clamped) and mksquashfs (-mkfs-time, -all-time) all honour it;
what stays per-build in the tree is removed by customize.clean_image.
"""

from __future__ import annotations

from livestrap.release import parse_release

ENV = "SOURCE_DATE_EPOCH"


def source_date_epoch(releases: dict[str, bytes]) -> int | None:
    """The newest release file's Date as Unix seconds; None without any dated release."""
    dates = [d for data in releases.values() if (d := parse_release(data).date) is not None]
    return int(max(dates).timestamp()) if dates else None


def build_env(epoch: int | None) -> dict[str, str]:
    """The environment a build command gets on top of run's clean one."""
    return {} if epoch is None else {ENV: str(epoch)}
