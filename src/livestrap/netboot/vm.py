"""Start, watch and stop virtual nodes; each runs in its own folder with its console log."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from livestrap.netboot.qemu import (
    BOOT_SCRIPT,
    OVMF_CODE,
    OVMF_MS_VARS,
    OVMF_SECBOOT_CODE,
    OVMF_VARS,
    NodeSpec,
    qemu_argv,
    render_tftp_script,
)
from livestrap.run import Process, start

KVM_PROBE_S = 5.0


# A boot sector that writes "K" to the first serial port and halts: if it shows up on the
# serial console within the probe time, KVM really runs guest code at a useful speed.
PROBE_MBR = bytes.fromhex("baf803b04beef4ebfd").ljust(510, b"\0") + b"\x55\xaa"


def running_nested(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """True inside a virtual machine: nested KVM there may pass a probe and still fail
    later in the boot ("KVM internal error" seen here in iPXE), so auto mode avoids it."""
    try:
        return " hypervisor" in cpuinfo.read_text()
    except OSError:
        return False


def kvm_usable(workdir: Path | None = None) -> bool:
    """Short probe boots under KVM with `-cpu host`: a boot sector must reach the serial port
    quickly, and the NIC's iPXE ROM (protected mode, where nested PVM hosts fail with "KVM
    internal error") must run for a few seconds without QEMU failing. Else: TCG."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK) or not shutil.which("qemu-system-x86_64"):
        return False
    if running_nested():
        return False
    with tempfile.TemporaryDirectory(prefix="livestrap-kvm-probe-", dir=workdir) as tmp:
        disk, out, err = Path(tmp) / "probe.img", Path(tmp) / "serial.out", Path(tmp) / "stderr"
        disk.write_bytes(PROBE_MBR)
        base = ["qemu-system-x86_64", "-accel", "kvm", "-cpu", "host", "-m", "128",
                "-nodefaults", "-display", "none", "-monitor", "none"]  # fmt: skip
        mbr = [*base, "-serial", f"file:{out}", "-drive", f"file={disk},format=raw,if=ide"]
        rom = [*base, "-serial", "none", "-netdev", "user,id=n0,restrict=on",
               "-device", "virtio-net-pci,netdev=n0", "-boot", "n"]  # fmt: skip
        return _probe(mbr, err, lambda: out.exists() and b"K" in out.read_bytes()) and _probe(
            rom, err, None
        )


def _probe(argv: list[str], err: Path, ok: Callable[[], bool] | None) -> bool:
    """Run argv for up to KVM_PROBE_S: True when `ok()` turns true (or, with no `ok`, when
    QEMU is still running at the end with no KVM error)."""
    # the caller's env: QEMU is found on its PATH (see run.py); killed on leaving
    with start(argv, stage="kvm-probe", output=err, grace_s=0, inherit_env=True) as proc:
        deadline = time.monotonic() + KVM_PROBE_S
        while time.monotonic() < deadline and proc.running():
            if b"KVM internal error" in err.read_bytes():
                return False
            if ok is not None and ok():
                return True
            time.sleep(0.1)
        return ok is None and proc.running() and b"error" not in err.read_bytes()


@dataclass
class VirtualNode:
    spec: NodeSpec
    workdir: Path
    proc: Process | None = None
    started_at: float = 0.0
    tftp_root: Path | None = None  # a TFTP tree to serve (netboot.tftptree); else the script

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    def prepare(self) -> None:
        """The node's folder: TFTP script, UEFI variable store, sparse disks."""
        tftp = self.workdir / "tftp"
        tftp.mkdir(parents=True, exist_ok=True)
        (tftp / BOOT_SCRIPT).write_text(render_tftp_script())
        if self.spec.firmware != "bios":
            secure = self.spec.firmware == "secure-boot"
            code, variables = (
                (OVMF_SECBOOT_CODE, OVMF_MS_VARS) if secure else (OVMF_CODE, OVMF_VARS)
            )
            if not code.is_file():
                raise FileNotFoundError(f"{code} is missing (apt-get install ovmf)")
            shutil.copyfile(variables, self.workdir / "OVMF_VARS.fd")
        for i, size in enumerate(self.spec.disks_gib):
            with (self.workdir / f"disk{i}.raw").open("wb") as fh:
                fh.truncate(int(size * 2**30))
        self.console_log.write_bytes(b"")

    def start(self, max_s: int | None = None) -> None:
        """Start QEMU; with `max_s` it is also bounded in time by coreutils' timeout."""
        self.prepare()
        argv = qemu_argv(self.spec, self.workdir, self.tftp_root or self.workdir / "tftp")
        if max_s:
            argv = ["timeout", "--kill-after=10", str(max_s), *argv]
        (self.workdir / "qemu.argv").write_text("\n".join(argv) + "\n")
        stderr = self.workdir / "qemu.stderr"  # the user's QEMU, on the user's PATH
        self.proc = start(argv, stage="vm", output=stderr, grace_s=5.0, inherit_env=True)
        self.started_at = time.monotonic()
        (self.workdir / "qemu.pid").write_text(f"{self.proc.pid}\n")

    def running(self) -> bool:
        return self.proc is not None and self.proc.running()

    def stop(self) -> None:
        """Stop the QEMU process we started (its process group only), then reap it."""
        if self.proc is not None:
            self.proc.stop()

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
