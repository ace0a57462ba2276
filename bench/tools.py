"""Small helpers the benchmarks share: Debian packages installed on demand (without
starting their services), a lock so two image builds never run at once, and a process's
CPU seconds."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BUILD_LOCK = Path("/run/lock/livestrap-build.lock")
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def ensure_debs(packages: dict[str, str]) -> None:
    """Install the Debian packages whose command (value) is missing. A policy-rc.d that
    refuses every start keeps packaged daemons (nginx on 0.0.0.0:80) from starting."""
    missing = [pkg for pkg, command in packages.items() if shutil.which(command) is None]
    if not missing:
        return
    had_policy = POLICY_RC.exists()
    if not had_policy:
        POLICY_RC.write_text("#!/bin/sh\nexit 101\n")
        POLICY_RC.chmod(0o755)
    try:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, env=env)
    finally:
        if not had_policy:
            POLICY_RC.unlink(missing_ok=True)


@contextmanager
def build_lock() -> Iterator[None]:
    """Held around every image build a benchmark makes (ours or a peer's): the machine
    has 2 cores, and two builds at once would measure each other."""
    BUILD_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with BUILD_LOCK.open("w") as fd:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its waited-for children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")
