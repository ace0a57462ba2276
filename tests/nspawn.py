"""Boot a Debian tree with systemd in `systemd-nspawn --boot`, on a host without systemd.

This host has no systemd PID 1, D-Bus or machined (docs: issue 14 research), so nspawn runs
with --register=no --keep-unit, inside a cgroup of its own in the name=systemd and unified
hierarchies (it makes payload/ and supervisor/ below its cgroup, which two runs would share
at the root). The container shares the host's network: its servers listen on 127.0.0.1 only,
and systemd-networkd is masked so nothing in it reconfigures the host's interfaces.
Everything is undone on exit: the container halts on SIGTERM (SIGKILL after a bound),
what is left of the cgroups is killed and removed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOTS = (Path("/sys/fs/cgroup/systemd"), Path("/sys/fs/cgroup/unified"))
MASKED = ("systemd-networkd.service", "systemd-networkd-wait-online.service",
          "systemd-networkd.socket", "systemd-resolved.service")  # fmt: skip
BOOT_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


def mask_host_facing_units(tree: Path) -> None:
    etc = tree / "etc/systemd/system"
    etc.mkdir(parents=True, exist_ok=True)
    for unit in MASKED:
        link = etc / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")


def _cgroup_dirs(machine: str) -> list[Path]:
    return [root / f"livestrap-test-{machine}" for root in CGROUP_ROOTS if root.is_dir()]


def _join_cgroups(dirs: list[Path]) -> None:
    """In the child before exec: nspawn's own cgroup is the one it starts in (--keep-unit)."""
    for d in dirs:
        (d / "cgroup.procs").write_text(str(os.getpid()))


def _pids_below(d: Path) -> list[int]:
    pids = []
    for procs in d.rglob("cgroup.procs"):
        with suppress(OSError):
            pids += [int(p) for p in procs.read_text().split()]
    return pids


def _remove_cgroup(d: Path) -> None:
    for sub in sorted((p for p in d.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
        with suppress(OSError):
            sub.rmdir()
    with suppress(OSError):
        d.rmdir()


def _statuses() -> dict[int, dict[str, str]]:
    """/proc/PID/status of every process, as key -> value."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with suppress(OSError):
                lines = (entry / "status").read_text().splitlines()
                found[int(entry.name)] = {
                    k: v.strip() for k, _, v in (ln.partition(":") for ln in lines)
                }
    return found


@dataclass
class Container:
    tree: Path
    machine: str
    proc: subprocess.Popen[bytes]
    console: Path
    _leader: int = 0

    def leader(self, timeout_s: float = BOOT_TIMEOUT_S) -> int:
        """The host pid of the container's PID 1: a descendant of our nspawn whose pid in
        its own namespace is 1."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nspawn exited {self.proc.returncode}: {self.tail()}")
            statuses = _statuses()
            for pid, status in statuses.items():
                nspid = status.get("NSpid", "").split()
                if len(nspid) > 1 and nspid[-1] == "1" and self._ours(pid, statuses):
                    self._leader = pid
                    return pid
            time.sleep(0.2)
        raise TimeoutError(f"no container init after {timeout_s} s: {self.tail()}")

    def _ours(self, pid: int, statuses: dict[int, dict[str, str]]) -> bool:
        for _ in range(8):  # nspawn -> its outer child -> the container's init
            ppid = int(statuses.get(pid, {}).get("PPid", "0"))
            if ppid == self.proc.pid:
                return True
            if ppid <= 1:
                return False
            pid = ppid
        return False

    def run(
        self, *argv: str, timeout_s: float = 60, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """argv inside the container (all its namespaces), bounded in time."""
        return subprocess.run(
            ["nsenter", "-t", str(self._leader or self.leader()), "-a", *argv],
            capture_output=True, text=True, timeout=timeout_s, check=check,
        )  # fmt: skip

    def wait_booted(self, timeout_s: float = BOOT_TIMEOUT_S) -> str:
        """Wait for the boot to finish ("running", or "degraded" when some unit failed)."""
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-system-running", timeout_s=10).stdout.strip()
            if state in ("running", "degraded"):
                return state
            time.sleep(0.5)
        raise TimeoutError(f"system {state!r} after {timeout_s} s: {self.tail()}")

    def wait_active(self, unit: str, timeout_s: float = 60) -> str:
        deadline = time.monotonic() + timeout_s
        state = ""
        while time.monotonic() < deadline:
            state = self.run("systemctl", "is-active", unit, timeout_s=10).stdout.strip()
            if state == "active" or state == "failed":
                return state
            time.sleep(0.5)
        return state

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-n", "60", "-u", unit).stdout

    def tail(self, lines: int = 30) -> str:
        with suppress(OSError):
            return "\n".join(self.console.read_text(errors="replace").splitlines()[-lines:])
        return ""


@contextmanager
def booted(tree: Path, console: Path) -> Iterator[Container]:
    """The tree booted with systemd; halted and cleaned up however the block ends."""
    machine = f"ls{os.getpid()}x{time.monotonic_ns() % 100000}"
    dirs = _cgroup_dirs(machine)
    for d in dirs:
        d.mkdir()
    argv = [
        "systemd-nspawn", "-D", str(tree), f"--machine={machine}", "--register=no",
        "--keep-unit", "--console=read-only", "--boot", "--",
        "systemd.firstboot=off", "systemd.unit=multi-user.target",
    ]  # fmt: skip
    proc = None
    try:
        with console.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=lambda: _join_cgroups(dirs),
            )  # fmt: skip
        yield Container(tree, machine, proc, console)
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # nspawn halts the container, then exits
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for d in dirs:  # only our cgroups: whatever the container left running there
            for pid in _pids_below(d):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for d in dirs:
            deadline = time.monotonic() + 10
            while _pids_below(d) and time.monotonic() < deadline:
                time.sleep(0.1)
            _remove_cgroup(d)
        with suppress(OSError):
            (Path("/run/systemd/nspawn/propagate") / machine).rmdir()
