"""Walking a path by folder descriptors, one component at a time, so that no component
is looked up again by name (a link swapped in meanwhile is never followed): shared by
the master's upload unpacking and the build's overlay copy."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable


def descend(fd: int, parts: Iterable[str], open_next: Callable[[int, str], int]) -> int:
    """The fd reached from `fd` through `parts`, each opened by `open_next(parent, part)`
    (which refuses links). Takes ownership of `fd`: it is closed on the way, or on error."""
    try:
        for part in parts:
            nxt = open_next(fd, part)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd
