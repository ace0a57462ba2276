"""Start, watch and stop virtual nodes; each runs in its own folder with its console log."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from livestrap.netboot.qemu import (
    BOOT_SCRIPT,
    OVMF_CODE,
    OVMF_VARS,
    NodeSpec,
    qemu_argv,
    render_tftp_script,
)

KVM_PROBE_S = 3.0


def kvm_usable() -> bool:
    """A short probe: does QEMU start with KVM and `-cpu host` and stay up? (On nested
    PVM hosts `-cpu host` aborts at once; there TCG is the only choice.)"""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not shutil.which("qemu-system-x86_64"):
        return False
    probe = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "64", "-nodefaults",
         "-display", "none", "-monitor", "none", "-serial", "none", "-S"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        probe.wait(timeout=KVM_PROBE_S)
        return False  # it exited: KVM refused
    except subprocess.TimeoutExpired:
        return True
    finally:
        if probe.poll() is None:
            os.killpg(probe.pid, signal.SIGKILL)
            probe.wait()


@dataclass
class VirtualNode:
    spec: NodeSpec
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    def prepare(self) -> None:
        """The node's folder: TFTP script, UEFI variable store, sparse disks."""
        tftp = self.workdir / "tftp"
        tftp.mkdir(parents=True, exist_ok=True)
        (tftp / BOOT_SCRIPT).write_text(render_tftp_script())
        if self.spec.firmware == "uefi":
            if not OVMF_CODE.is_file():
                raise FileNotFoundError(f"{OVMF_CODE} is missing (apt-get install ovmf)")
            shutil.copyfile(OVMF_VARS, self.workdir / "OVMF_VARS.fd")
        for i, size in enumerate(self.spec.disks_gib):
            with (self.workdir / f"disk{i}.raw").open("wb") as fh:
                fh.truncate(int(size * 2**30))
        self.console_log.write_bytes(b"")

    def start(self, max_s: int | None = None) -> None:
        """Start QEMU; with `max_s` it is also bounded in time by coreutils' timeout."""
        self.prepare()
        argv = qemu_argv(self.spec, self.workdir, self.workdir / "tftp")
        if max_s:
            argv = ["timeout", "--kill-after=10", str(max_s), *argv]
        (self.workdir / "qemu.argv").write_text("\n".join(argv) + "\n")
        stderr = (self.workdir / "qemu.stderr").open("wb")
        self.proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr, start_new_session=True
        )
        self.started_at = time.monotonic()
        (self.workdir / "qemu.pid").write_text(f"{self.proc.pid}\n")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        """Stop the QEMU process we started (its process group only), then reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue

    def console(self) -> str:
        return self.console_log.read_text(errors="replace") if self.console_log.exists() else ""


def stop_recorded(vms_dir: Path) -> list[str]:
    """Stop detached nodes by the PIDs recorded when we started them; returns their names."""
    stopped = []
    for pidfile in sorted(vms_dir.glob("*/qemu.pid")):
        try:
            pid = int(pidfile.read_text().strip())
            os.killpg(pid, signal.SIGTERM)
            stopped.append(pidfile.parent.name)
        except (ValueError, ProcessLookupError, PermissionError):
            pass
        pidfile.unlink(missing_ok=True)
    return stopped
