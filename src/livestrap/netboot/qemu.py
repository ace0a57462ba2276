"""Virtual nodes: QEMU machines that PXE-boot from the master (for trying and testing).

The guest's only way out is user-mode networking with `restrict=on`: slirp's TFTP hands
iPXE a tiny script, and `guestfwd` (through socat) connects 10.0.2.100:80 to the master.
Everything here that decides a command line is a pure function.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from livestrap import bootpaths

Firmware = Literal["bios", "uefi", "secure-boot"]
MASTER_IN_GUEST = "10.0.2.100"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
# Secure Boot enforced, Microsoft's keys enrolled (they verify shim); SMM guards the store
OVMF_SECBOOT_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.secboot.fd")
OVMF_MS_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.ms.fd")
BOOT_SCRIPT = "boot.ipxe"


@dataclass(frozen=True)
class NodeSpec:
    """What a virtual node looks like; MACs and the SMBIOS UUID derive from `name`."""

    name: str
    master_host: str = "127.0.0.1"
    master_port: int = 8080
    firmware: Firmware = "bios"
    memory_mib: int = 1024
    cpus: int = 1
    disks_gib: tuple[float, ...] = ()
    nics: int = 1
    serial: str | None = None
    vendor: str = "livestrap"
    product: str = "virtual node"
    accel: Literal["tcg", "kvm"] = "tcg"
    boot_file: str = BOOT_SCRIPT  # what slirp's DHCP names (secure-boot: shimx64.efi)
    extra: tuple[str, ...] = field(default_factory=tuple)

    @property
    def system_uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"livestrap-vm:{self.name}"))

    def mac(self, index: int) -> str:
        digest = hashlib.sha256(f"{self.name}/{index}".encode()).digest()
        return "52:54:00:" + ":".join(f"{b:02x}" for b in digest[:3])

    @property
    def smbios_serial(self) -> str:
        return self.serial or f"LS-{self.name}"

    def disk_serial(self, index: int) -> str:
        """Unique per node and disk, within virtio-blk's 20 characters."""
        digest = hashlib.sha256(self.name.encode()).hexdigest()[:8]
        return f"LS{digest}D{index}"


def render_tftp_script(master: str = MASTER_IN_GUEST) -> str:
    """What slirp's TFTP gives iPXE: chain to the master's script (iPXE's ROM already
    configured net0 by DHCP to fetch this, so no second `dhcp`)."""
    return f"#!ipxe\nchain {bootpaths.script_url(f'http://{master}')}\n"


def guestfwd(spec: NodeSpec) -> str:
    """Each guest connection to 10.0.2.100:80 becomes one socat to the master."""
    return (
        f"guestfwd=tcp:{MASTER_IN_GUEST}:80-cmd:"
        f"socat STDIO TCP4:{spec.master_host}:{spec.master_port}"
    )


def qemu_argv(spec: NodeSpec, workdir: Path, tftp_dir: Path) -> list[str]:
    """The full qemu-system-x86_64 command line for a node (pure)."""
    argv = ["qemu-system-x86_64", "-name", spec.name, "-accel", spec.accel]
    argv += ["-cpu", "host" if spec.accel == "kvm" else "qemu64"]
    argv += ["-m", str(spec.memory_mib), "-smp", str(spec.cpus)]
    argv += ["-nodefaults", "-display", "none", "-monitor", "none", "-no-reboot"]
    argv += ["-serial", f"file:{workdir / 'console.log'}"]
    argv += ["-smbios", f"type=1,manufacturer={spec.vendor},product={spec.product},"
             f"serial={spec.smbios_serial},uuid={spec.system_uuid}"]  # fmt: skip
    if spec.firmware != "bios":
        code = OVMF_SECBOOT_CODE if spec.firmware == "secure-boot" else OVMF_CODE
        if spec.firmware == "secure-boot":
            argv += [
                "-machine",
                "q35,smm=on",
                "-global",
                "driver=cfi.pflash01,property=secure,value=on",
            ]
        else:
            argv += ["-machine", "q35"]
        argv += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}"]
        argv += ["-drive", f"if=pflash,format=raw,unit=1,file={workdir / 'OVMF_VARS.fd'}"]
    for i in range(spec.nics):
        # IPv6 stays on: without a router advertisement the iPXE in QEMU's ROMs waits
        # ~13 s for IPv6 autoconfiguration before it uses its DHCPv4 lease.
        netdev = f"user,id=net{i},restrict=on"
        if i == 0:
            netdev += f",tftp={tftp_dir},bootfile={spec.boot_file},{guestfwd(spec)}"
        argv += ["-netdev", netdev]
        device = f"virtio-net-pci,netdev=net{i},mac={spec.mac(i)}"
        if i == 0 and spec.firmware == "secure-boot":
            device += ",romfile=,bootindex=1"  # OVMF's own PXE: QEMU's iPXE ROM is unsigned
        else:
            device += ",bootindex=1" if i == 0 else ",romfile="
        argv += ["-device", device]
    for i, _size in enumerate(spec.disks_gib):
        disk = workdir / f"disk{i}.raw"
        argv += ["-drive", f"if=none,id=disk{i},format=raw,file={disk}"]
        argv += ["-device", f"virtio-blk-pci,drive=disk{i},serial={spec.disk_serial(i)}"]
    argv += list(spec.extra)
    return argv
