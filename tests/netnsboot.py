"""Pieces of a network boot inside a test's own namespace (tests/netns.py): dnsmasq and a
master started there on the e2e image, the admin API read through curl run inside, and
the logs to show when a boot fails. tests/integration/test_netns_http_boot.py uses them
(test_netns_dnsmasq.py has its own copies from before this module)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import TEST_CACHE
from netns import Netns

E2E_DATA = TEST_CACHE / "e2e-data"
PORT = 8080  # the namespace is the test's own: nothing else listens in it


def which(tool: str) -> str | None:
    """Also in sbin, which a non-login root shell may lack on its PATH."""
    return shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")


def tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path.name}: missing)"
    return f"--- {path.name} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


def handed(log: str, bootfile: str) -> bool:
    """Did dnsmasq hand out `bootfile`? In the BOOTP file field (`bootfile name: X`) or,
    to a client that asked for it, as option 67 (v4) or 59 (v6)."""
    pattern = (r"(bootfile name: |option: 67 bootfile-name +|option6: 59 bootfile-url +)"
               + re.escape(bootfile) + "$")  # fmt: skip
    return re.search(pattern, log, re.MULTILINE) is not None


class NamespaceMaster:
    """The master's admin API as seen from inside the namespace (curl run there)."""

    def __init__(self, ns: Netns, url: str, data_dir: Path, workdir: Path) -> None:
        self.ns = ns
        self.url = url
        self.token = data_dir / "admin.token"
        self.header = workdir / "admin.header"  # curl -H @file: no token in argv

    def auth_header(self) -> Path:
        """Written on first use: the master makes its token as it starts."""
        if not self.header.exists():
            self.header.write_text(f"Authorization: Bearer {self.token.read_text()}")
            self.header.chmod(0o600)
        return self.header

    def get(self, path: str) -> Any:
        done = self.ns.run(["curl", "-sfg", "--max-time", "10", "-H", f"@{self.auth_header()}",
                            self.url + path])  # fmt: skip
        return json.loads(done.stdout) if done.returncode == 0 else None

    def healthy(self) -> bool:
        done = self.ns.run(["curl", "-sfg", "--max-time", "2", f"{self.url}/healthz"])
        return done.returncode == 0

    def node(self, mac: str) -> dict[str, Any] | None:
        listed = self.get(f"/api/v1/nodes?mac={mac}")
        if not listed:
            return None
        node: dict[str, Any] | None = self.get(f"/api/v1/nodes/{listed[0]['id']}")
        return node


@dataclass
class Servers:
    dnsmasq: subprocess.Popen[bytes]
    master: subprocess.Popen[bytes]
    api: NamespaceMaster


def start_servers(
    ns: Netns, conf: Path, workdir: Path, listen: str, public_url: str, env: dict[str, str]
) -> Servers:
    """dnsmasq with `conf` and a master on `listen` in the namespace; waits until the
    master answers (60 s at most). Their logs: workdir/dnsmasq.log, workdir/master.log."""
    dnsmasq = ns.start([str(which("dnsmasq")), "--keep-in-foreground", "--log-facility=-",
                        f"--conf-file={conf}", f"--pid-file={workdir / 'dnsmasq.pid'}",
                        f"--dhcp-leasefile={workdir / 'dnsmasq.leases'}"],
                       workdir / "dnsmasq.log")  # fmt: skip
    argv = [sys.executable, "-m", "livestrap", "serve", "--data-dir", str(E2E_DATA),
            "--listen", listen, "--public-url", public_url,
            "--database-url", f"sqlite:///{workdir / 'db.sqlite'}"]  # fmt: skip
    if env:  # `ip netns exec` passes the environment on; env(1) adds to it
        argv = ["env", *(f"{k}={v}" for k, v in env.items()), *argv]
    master = ns.start(argv, workdir / "master.log")
    servers = Servers(dnsmasq, master, NamespaceMaster(ns, public_url, E2E_DATA, workdir))
    deadline = time.monotonic() + 60
    while not servers.api.healthy():
        assert dnsmasq.poll() is None, f"dnsmasq exited\n{tail(workdir / 'dnsmasq.log')}"
        assert master.poll() is None, f"master exited\n{tail(workdir / 'master.log')}"
        assert time.monotonic() < deadline, f"master not up in 60 s\n{tail(workdir / 'master.log')}"
        time.sleep(0.5)
    return servers
