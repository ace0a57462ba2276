"""Values as operators read them: '3m ago', '3.8 GiB', '25 Gb/s', local times."""

from __future__ import annotations

import time
from datetime import datetime


def ago(iso: str | None, now: float | None = None) -> str:
    """'12s ago', '5m ago', '3h ago', '2d ago': what an operator scans a list for."""
    if not iso:
        return "-"
    at = datetime.fromisoformat(iso)
    seconds = max(0, int((time.time() if now is None else now) - at.timestamp()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def local_time(iso: str | None) -> str:
    """An API time (ISO 8601, UTC) in the operator's time zone, to the second."""
    if not iso:
        return "-"
    return f"{datetime.fromisoformat(iso).astimezone():%Y-%m-%d %H:%M:%S}"


def duration(seconds: float) -> str:
    """'42s', '3m05s', '2h01m'."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02}s"
    return f"{s // 3600}h{s % 3600 // 60:02}m"


def binary_size(size: object) -> str:
    """Bytes in binary units with one decimal ('3.8 GiB'); '-' when unknown."""
    if not isinstance(size, int | float) or isinstance(size, bool) or size < 0:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def decimal_size(size: int) -> str:
    """Bytes as MB, as `images list` has always shown them."""
    return f"{size / 1e6:.1f} MB"


def link_speed(mbps: object) -> str:
    """A NIC speed in Mb/s as '100 Mb/s' or '25 Gb/s'; '-' when unknown (-1: no link)."""
    if not isinstance(mbps, int) or isinstance(mbps, bool) or mbps <= 0:
        return "-"
    if mbps < 1000:
        return f"{mbps} Mb/s"
    return f"{mbps / 1000:g} Gb/s"
