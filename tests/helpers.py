"""Helpers shared by the integration and end-to-end tiers."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

TEST_CACHE = Path(os.environ.get("LIVESTRAP_TEST_CACHE", "/var/cache/livestrap-test"))


def require_build_tools() -> None:
    """Skip, with the reason, where a real build cannot run."""
    if os.geteuid() != 0:
        pytest.skip("real builds need root (mmdebstrap --mode=root)")
    missing = [t for t in ("mmdebstrap", "mksquashfs", "lsinitramfs", "gpg") if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing tools: {', '.join(missing)} (run `make deps`)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def serve_directory(root: Path) -> Iterator[str]:
    """Serve `root` over HTTP on 127.0.0.1 (a free port); yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def mounts_below(path: Path) -> list[str]:
    root = os.path.realpath(path)
    with open("/proc/self/mounts") as fh:
        return [line for line in fh if f" {root}" in line]
