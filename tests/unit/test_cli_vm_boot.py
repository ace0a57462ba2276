"""`livestrap vm boot` with fake QEMU nodes and a fake master: waiting, detaching, timeouts."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fake_master import FakeMaster, node_summary
from fake_master import fake_master as fake_master
from typer.testing import CliRunner

from livestrap.cli import app, vm_cmd
from livestrap.netboot.qemu import NodeSpec

pytestmark = pytest.mark.unit


class FakeNode:
    """Stands in for netboot.vm.VirtualNode: records start/stop, boots no QEMU."""

    made: list[FakeNode] = []  # noqa: RUF012 (reset by the fixture)

    def __init__(self, spec: NodeSpec, workdir: Path) -> None:
        self.spec, self.workdir = spec, workdir
        self.started_at = 0.0
        self.started = self.stopped = False
        FakeNode.made.append(self)

    @property
    def console_log(self) -> Path:
        return self.workdir / "console.log"

    def start(self, max_s: int | None = None) -> None:
        self.started, self.started_at = True, time.monotonic()

    def running(self) -> bool:
        return self.started and not self.stopped

    def stop(self) -> None:
        self.stopped = True


@pytest.fixture
def nodes(monkeypatch: pytest.MonkeyPatch) -> list[FakeNode]:
    FakeNode.made = []
    monkeypatch.setattr(vm_cmd, "VirtualNode", FakeNode)
    monkeypatch.setattr(vm_cmd, "kvm_usable", lambda: False)
    monkeypatch.setattr(vm_cmd, "POLL_S", 0.01)
    return FakeNode.made


def registers_after_start(fake: FakeMaster, nodes: list[FakeNode], boots_before: int = 0) -> None:
    """GET /api/v1/nodes?mac=M: the node with boots_before boots, one more once it started."""

    def listed(request: httpx.Request) -> list[dict[str, Any]]:
        mac = request.url.params["mac"]
        node = next(n for n in nodes if n.spec.mac(0) == mac)
        boots = boots_before + (1 if node.started else 0)
        return [node_summary(f"id-{node.spec.name}", mac, boots)] if boots else []

    fake.routes["GET /api/v1/nodes"] = listed


def boot(tmp_path: Path, *args: str) -> Any:
    argv = ["vm", "boot", "--master", "http://127.0.0.1:8080", "--token", "t",
            "--data-dir", str(tmp_path), *args]  # fmt: skip
    return CliRunner().invoke(app, argv)


def test_boot_waits_for_registration_then_detaches(
    tmp_path: Path, fake_master: FakeMaster, nodes: list[FakeNode]
) -> None:
    """The client that asked for the boot counts before the nodes started is the one that
    waits (httpx refuses to open a used client: this crashed every waiting boot)."""
    registers_after_start(fake_master, nodes, boots_before=1)
    result = boot(tmp_path, "--count", "2", "--name", "n", "--detach", "-q")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["id-n1", "id-n2"]
    assert [n.spec.name for n in nodes] == ["n1", "n2"]
    assert all(n.started and not n.stopped for n in nodes)
    assert len(fake_master.clients) == 1  # one client for the whole command
    assert fake_master.paths().count("GET /api/v1/nodes") >= 4  # counts before, then polls


def test_boot_without_detach_stops_the_nodes_after_timeout(
    tmp_path: Path, fake_master: FakeMaster, nodes: list[FakeNode]
) -> None:
    registers_after_start(fake_master, nodes)
    result = boot(tmp_path, "--timeout", "1", "-o", "json")
    assert result.exit_code == 0, result.output
    assert '"id": "id-vm"' in result.stdout
    assert nodes[0].stopped


def test_no_wait_detach_returns_at_once_leaving_the_nodes_running(
    tmp_path: Path, fake_master: FakeMaster, nodes: list[FakeNode]
) -> None:
    t0 = time.monotonic()
    result = boot(tmp_path, "--no-wait", "--detach", "--timeout", "900")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - t0 < 5
    assert nodes[0].started and not nodes[0].stopped
    assert fake_master.requests == [] and fake_master.clients == []  # no client was made
    assert "vm stop" in result.stderr


def test_nodes_that_do_not_register_are_stopped(
    tmp_path: Path, fake_master: FakeMaster, nodes: list[FakeNode]
) -> None:
    fake_master.routes["GET /api/v1/nodes"] = lambda request: []
    result = boot(tmp_path, "--timeout", "0", "--detach")
    assert result.exit_code != 0
    assert "1 node(s) did not register in 0 s" in str(result.exception)
    assert nodes[0].stopped


def test_bad_master_url_is_refused_before_anything_starts(
    tmp_path: Path, fake_master: FakeMaster, nodes: list[FakeNode]
) -> None:
    result = CliRunner().invoke(app, ["vm", "--master", "https://m", "boot"])
    assert "expected http://HOST:PORT" in str(result.exception)
    assert nodes == [] and fake_master.clients == []


def test_secure_boot_nodes_get_a_tftp_tree_of_the_active_image(
    tmp_path: Path, fake_master: FakeMaster, nodes: list[FakeNode],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """--firmware secure-boot: the node's folder gets the TFTP tree (shim, GRUB, grub.cfg
    naming the guest's view of the master) and DHCP names shimx64.efi."""
    written: list[tuple[Path, Path, str]] = []
    monkeypatch.setattr(
        vm_cmd, "write_local_tree", lambda data, tree, base: written.append((data, tree, base))
    )
    registers_after_start(fake_master, nodes)
    result = boot(tmp_path, "--firmware", "secure-boot", "--name", "sb", "--detach", "-q")
    assert result.exit_code == 0, result.output
    (node,) = nodes
    assert (node.spec.firmware, node.spec.boot_file) == ("secure-boot", "shimx64.efi")
    assert written == [(tmp_path, node.workdir / "secure-boot-tftp", "http://10.0.2.100")]
