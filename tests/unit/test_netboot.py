"""netboot: QEMU command lines and the slirp TFTP script, exact text (dnsmasq:
test_netboot_dnsmasq.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from livestrap.netboot import vm
from livestrap.netboot.qemu import NodeSpec, qemu_argv, render_tftp_script
from livestrap.netboot.vm import PROBE_MBR, running_nested

pytestmark = pytest.mark.unit


def test_tftp_script() -> None:
    assert render_tftp_script() == "#!ipxe\nchain http://10.0.2.100/boot/ipxe?mac=${net0/mac}\n"


def test_node_identity_is_stable() -> None:
    a, b = NodeSpec(name="n1"), NodeSpec(name="n1")
    assert a.mac(0) == b.mac(0) and a.mac(0) != a.mac(1) and a.mac(0).startswith("52:54:00:")
    assert a.system_uuid == b.system_uuid != NodeSpec(name="n2").system_uuid
    assert a.smbios_serial == "LS-n1" and NodeSpec(name="x", serial="S1").smbios_serial == "S1"
    assert len(a.disk_serial(3)) <= 20


def test_qemu_argv_bios() -> None:
    spec = NodeSpec(name="n1", master_port=9000, disks_gib=(2,), nics=2, serial="S1")
    argv = qemu_argv(spec, Path("/w"), Path("/w/tftp"))
    assert argv[:6] == ["qemu-system-x86_64", "-name", "n1", "-accel", "tcg", "-cpu"]
    assert argv[6] == "qemu64" and "-nodefaults" in argv and "-no-reboot" in argv
    assert "file:/w/console.log" in argv
    smbios = argv[argv.index("-smbios") + 1]
    assert smbios == (
        f"type=1,manufacturer=livestrap,product=virtual node,serial=S1,uuid={spec.system_uuid}"
    )
    netdevs = [argv[i + 1] for i, a in enumerate(argv) if a == "-netdev"]
    assert netdevs == [
        "user,id=net0,restrict=on,tftp=/w/tftp,bootfile=boot.ipxe,"
        "guestfwd=tcp:10.0.2.100:80-cmd:socat STDIO TCP4:127.0.0.1:9000",
        "user,id=net1,restrict=on",
    ]
    devices = [argv[i + 1] for i, a in enumerate(argv) if a == "-device"]
    assert devices == [
        f"virtio-net-pci,netdev=net0,mac={spec.mac(0)},bootindex=1",
        f"virtio-net-pci,netdev=net1,mac={spec.mac(1)},romfile=",
        f"virtio-blk-pci,drive=disk0,serial={spec.disk_serial(0)}",
    ]
    assert "pflash" not in " ".join(argv)


def test_qemu_argv_uefi() -> None:
    argv = qemu_argv(NodeSpec(name="u", firmware="uefi"), Path("/w"), Path("/w/tftp"))
    drives = [argv[i + 1] for i, a in enumerate(argv) if a == "-drive"]
    assert drives == [
        "if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd",
        "if=pflash,format=raw,unit=1,file=/w/OVMF_VARS.fd",
    ]
    assert argv[argv.index("-machine") + 1] == "q35"


def test_qemu_argv_secure_boot() -> None:
    spec = NodeSpec(name="s", firmware="secure-boot", boot_file="shimx64.efi")
    argv = qemu_argv(spec, Path("/w"), Path("/tree"))
    joined = " ".join(argv)
    assert "-machine q35,smm=on -global driver=cfi.pflash01,property=secure,value=on" in joined
    assert "file=/usr/share/OVMF/OVMF_CODE_4M.secboot.fd" in joined
    assert ",tftp=/tree,bootfile=shimx64.efi," in joined
    nic = argv[argv.index("-device") + 1]
    assert nic.endswith(",romfile=,bootindex=1")  # QEMU's iPXE ROM is unsigned: OVMF's PXE


def test_kvm_probe_pieces(tmp_path: Path) -> None:
    assert len(PROBE_MBR) == 512 and PROBE_MBR.endswith(b"\x55\xaa")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu vme hypervisor lahf_lm\n")
    assert running_nested(cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu vme lahf_lm\n")
    assert not running_nested(cpuinfo)


def test_kvm_probe_runs_and_kills_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """_probe through run.start: stopped as soon as the answer is known, and never left over."""
    monkeypatch.setattr(vm, "KVM_PROBE_S", 0.5)
    err, out = tmp_path / "stderr", tmp_path / "serial"
    started = time.monotonic()
    mbr = ["sh", "-c", f"echo K > {out}; exec sleep 30"]
    assert vm._probe(mbr, err, lambda: out.exists() and b"K" in out.read_bytes())
    assert not vm._probe(["sh", "-c", "echo 'KVM internal error' >&2; exec sleep 30"], err, None)
    assert vm._probe(["sleep", "30"], err, None)  # still running, no error: the ROM works
    assert not vm._probe(["sh", "-c", "echo 'qemu: some error'; exec sleep 30"], err, None)
    assert not vm._probe(["true"], err, None)  # QEMU gave up
    assert time.monotonic() - started < 10
