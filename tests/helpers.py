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
from typing import NoReturn

import pytest

TEST_CACHE = Path(os.environ.get("LIVESTRAP_TEST_CACHE", "/var/cache/livestrap-test"))
IN_CI = os.environ.get("CI") == "true"


def skip_missing(what: str) -> NoReturn:
    """Skip for want of a package; in CI (CI=true) fail instead: `make test` installs every
    package the tests use, so a missing one there is a missing install step, not a skip."""
    if IN_CI:
        pytest.fail(f"missing in CI: {what}; the Makefile's APT_PACKAGES must install it")
    pytest.skip(f"missing: {what} (run `make deps`)")


def require_commands(*commands: str) -> None:
    """Skip (fail in CI) unless every command is on PATH (or in /usr/sbin, /sbin)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing = [c for c in commands if not shutil.which(c, path=path)]
    if missing:
        skip_missing(", ".join(missing))


def require_build_tools() -> None:
    """Skip, with the reason, where a real build cannot run."""
    if os.geteuid() != 0:
        pytest.skip("real builds need root (mmdebstrap --mode=root)")
    require_commands("mmdebstrap", "mksquashfs", "lsinitramfs", "gpg")


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


def open_to_nginx(path: Path) -> None:
    """Let nginx's workers (nobody) read `path` and pass through its parents: pytest's
    temporary folders are 0700."""
    for p in [path, *path.parents]:
        if p.stat().st_mode & 0o005 != 0o005:
            p.chmod(p.stat().st_mode | 0o005)


def mounts_below(path: Path) -> list[str]:
    root = os.path.realpath(path)
    with open("/proc/self/mounts") as fh:
        return [line for line in fh if f" {root}" in line]
