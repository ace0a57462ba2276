"""Secure Boot, enforced, with the keys a real server ships: OVMF built for Secure Boot
with Microsoft's keys enrolled (q35, SMM), and only Debian-signed binaries: shim (signed
by Microsoft's UEFI CA) -> Debian's network GRUB -> Debian's kernel, from the TFTP tree
the master keeps (`--tftp-dir`), served by QEMU's TFTP. The node registers and reports
`secure_boot: true`. The same firmware refuses Debian's unsigned ipxe.efi from the same
tree: proof that the check is on, not merely configured."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2ekit import registered_node, wait_for
from livestrap.netboot.qemu import OVMF_MS_VARS, OVMF_SECBOOT_CODE, NodeSpec
from livestrap.netboot.tftptree import SHIM
from livestrap.netboot.vm import VirtualNode
from masterproc import Master, free_port, master_process

pytestmark = pytest.mark.e2e

GUEST_URL = "http://10.0.2.100"  # how the guests reach the master (guestfwd)
REGISTER_TIMEOUT_S = 480
REFUSAL_TIMEOUT_S = 240
VM_MAX_S = REGISTER_TIMEOUT_S + 60


@pytest.fixture
def sb_master(e2e_data_dir: Path, tmp_path: Path) -> Iterator[tuple[Master, Path]]:
    """A master that keeps a TFTP tree for the active image, as an operator runs it."""
    if not (OVMF_SECBOOT_CODE.is_file() and OVMF_MS_VARS.is_file()):
        pytest.skip("OVMF's Secure Boot build is missing (apt-get install ovmf)")
    tree = tmp_path / "tftp"
    with master_process(
        e2e_data_dir,
        fake_builds=False,
        database_url=f"sqlite:///{tmp_path / 'master.db'}",
        port=free_port(),
        public_url=GUEST_URL,
        env={"LIVESTRAP_TFTP_DIR": str(tree)},
    ) as m:
        active = (e2e_data_dir / "active").resolve().name
        deadline = time.monotonic() + 60  # the master compares every few seconds
        while not (tree / "image" / active / "initrd.img").is_file():
            assert time.monotonic() < deadline, "the master wrote no TFTP tree in 60 s"
            time.sleep(1)
        assert active in (tree / "grub/grub.cfg").read_text()
        yield m, tree


def _node(tmp_path: Path, master: Master, tree: Path, name: str, boot_file: str) -> VirtualNode:
    port = int(master.url.rsplit(":", 1)[1])
    spec = NodeSpec(name=name, master_port=port, firmware="secure-boot", boot_file=boot_file)
    node = VirtualNode(spec, tmp_path / f"vm-{name}", tftp_root=tree)
    node.start(max_s=VM_MAX_S)
    return node


def test_shim_grub_kernel_with_secure_boot_enforced_and_unsigned_ipxe_refused(
    sb_master: tuple[Master, Path], tmp_path: Path
) -> None:
    master, tree = sb_master
    signed = _node(tmp_path, master, tree, "sb-signed", SHIM)
    unsigned = _node(tmp_path, master, tree, "sb-unsigned", "ipxe.efi")
    try:
        # the unsigned binary: downloaded, then refused by the firmware's image check
        wait_for("OVMF to refuse ipxe.efi", lambda: "Access Denied" in unsigned.console(),
                 unsigned, REFUSAL_TIMEOUT_S)  # fmt: skip
        refused = unsigned.console()
        assert "NBP filename is ipxe.efi" in refused
        assert "Access Denied" in refused, refused[-2000:]
        assert "iPXE" not in refused  # it never ran
        unsigned.stop()

        node: dict[str, Any] = wait_for(
            "the Secure Boot node to register",
            lambda: registered_node(master, signed.spec.mac(0)), signed, REGISTER_TIMEOUT_S,
        )  # fmt: skip
        seconds = time.monotonic() - signed.started_at
        console = signed.console()
        assert "Fetching Netboot Image grubx64.efi" in console  # shim loaded GRUB
        assert "UEFI Secure Boot is enabled" in console  # the kernel's EFI stub saw it
        assert "Kernel is locked down from EFI Secure Boot" in console
        assert "Loaded X.509 cert 'Debian Secure Boot CA" in console  # Debian's key, no other
        system = node["facts"]["system"]
        assert (system["firmware"], system["secure_boot"], system["boot_path"]) == (
            "uefi", True, "grub"
        )  # fmt: skip
        with master.admin() as client:
            events = client.get(f"/api/v1/nodes/{node['id']}/timeline").json()
        kinds = [e["kind"] for e in events]
        assert {"squashfs-start", "squashfs-end", "report"} <= set(kinds)
        assert registered_node(master, unsigned.spec.mac(0)) is None
        print(f"secure boot: power-on -> registered in {seconds:.0f} s")
    finally:
        signed.stop()
        unsigned.stop()
