"""A network namespace of the test's own, for servers and virtual nodes on a real L2 link.

Inside it: `lo`, a bridge with one address and a tap enslaved to it for QEMU. The
namespace has no other interface and no route, so nothing started in it (dnsmasq, a
master, QEMU) can send a packet to the host's networks. Every process is started in
a session of its own and killed by its process group id; the namespace (and with it the
bridge and the tap) is deleted when the context ends, even on failure.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from helpers import require_commands
from livestrap.run import stop_process_group

BRIDGE = "br0"
TAP = "tap0"


@dataclass
class Netns:
    name: str
    address: ipaddress.IPv4Interface  # the bridge's: how the namespace's servers are reached
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return str(self.address.ip)

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(self, argv: Sequence[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a short command inside the namespace; its output is returned, not checked."""
        return subprocess.run(
            self.argv(argv), capture_output=True, text=True, timeout=timeout, check=False
        )

    def start(self, argv: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
        """Start a long-running process inside, stdout and stderr to `log`. `ip netns
        exec` execs the command, so the pid is the command's own (its group's id too)."""
        with log.open("wb") as out:
            proc = subprocess.Popen(
                self.argv(argv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes], grace_s: float = 15) -> None:
        """SIGTERM to the process's group, SIGKILL after `grace_s`."""
        stop_process_group(proc, grace_s=grace_s)

    def stop_all(self) -> None:
        errors = []
        for proc in reversed(self.procs):
            try:
                self.stop(proc)
            except RuntimeError as err:
                errors.append(str(err))
        self.procs.clear()
        if errors:
            raise RuntimeError("; ".join(errors))


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


def _setup(ns: Netns) -> None:
    steps = [
        ["link", "set", "lo", "up"],
        ["link", "add", BRIDGE, "type", "bridge", "forward_delay", "0", "stp_state", "0"],
        ["addr", "add", str(ns.address), "dev", BRIDGE],
        ["link", "set", BRIDGE, "up"],
        ["tuntap", "add", TAP, "mode", "tap"],
        ["link", "set", TAP, "master", BRIDGE],
        ["link", "set", TAP, "up"],
    ]
    for step in steps:
        done = _ip("-n", ns.name, *step)
        if done.returncode != 0:
            raise RuntimeError(f"ip -n {ns.name} {' '.join(step)}: {done.stderr.strip()}")


@contextmanager
def network_namespace(address: str = "10.213.7.1/24") -> Iterator[Netns]:
    """A fresh namespace `ls<random>` with `br0` at `address` and `tap0` on the bridge.

    Skips the test (with the reason) where namespaces cannot be made here."""
    if os.geteuid() != 0:
        pytest.skip("a network namespace with a bridge and a tap needs root")
    require_commands("ip")
    if not Path("/dev/net/tun").exists():
        pytest.skip("/dev/net/tun is missing: no tap devices on this machine")
    ns = Netns(f"ls{uuid.uuid4().hex[:10]}", ipaddress.IPv4Interface(address))
    made = _ip("netns", "add", ns.name)
    if made.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {made.stderr.strip()}")
    try:
        try:
            _setup(ns)
        except RuntimeError as err:
            pytest.skip(f"cannot set up the bridge and tap in a namespace: {err}")
        yield ns
    finally:
        try:
            ns.stop_all()
        finally:
            _delete(ns.name)


def _delete(name: str) -> None:
    """Delete the namespace; its bridge and tap go with it. Retried briefly, because a
    process that just died may still hold it for a moment."""
    deadline = time.monotonic() + 10
    while True:
        done = _ip("netns", "del", name)
        if done.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    if done.returncode != 0:
        raise RuntimeError(f"ip netns del {name}: {done.stderr.strip()}")
