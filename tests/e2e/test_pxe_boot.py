"""A virtual node network-boots the active image and appears in the inventory."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest

from e2ekit import registered_node, wait_for
from livestrap.netboot.qemu import NodeSpec
from masterproc import Master, master_process

pytestmark = pytest.mark.e2e

BOOT_ORDER = ["script", "kernel", "initrd", "squashfs-start", "squashfs-end", "report"]


def spec_for(master: Master, name: str, **kwargs: Any) -> NodeSpec:
    port = int(master.url.rsplit(":", 1)[1])
    return NodeSpec(name=name, master_port=port, **kwargs)


def timeline(master: Master, node_id: str) -> list[dict[str, Any]]:
    with master.admin() as client:
        events: list[dict[str, Any]] = client.get(f"/api/v1/nodes/{node_id}/timeline").json()
        return events


def check_facts(node: dict[str, Any], spec: NodeSpec, firmware: str) -> None:
    facts = node["facts"]
    system = facts["system"]
    assert system["serial"] == spec.smbios_serial
    assert system["uuid"].lower() == spec.system_uuid
    assert system["vendor"] == spec.vendor and system["product"] == spec.product
    assert system["firmware"] == firmware
    total = facts["memory"]["total"]
    assert 0.8 * spec.memory_mib * 2**20 < total <= spec.memory_mib * 2**20
    disks = {d["serial"]: d["size"] for d in facts["disks"] if d.get("serial")}
    for i, size in enumerate(spec.disks_gib):
        assert disks[spec.disk_serial(i)] == int(size * 2**30)
    nics = {n["mac"]: n for n in facts["nics"]}
    assert nics[spec.mac(0)]["pxe"] is True
    assert facts["cpu"]["threads"] == spec.cpus


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_node_pxe_boots_and_registers(master: Master, boot_node: Any, firmware: str) -> None:
    spec = spec_for(master, f"e2e-{firmware}", firmware=firmware, disks_gib=(2, 1),
                    serial=f"E2E-{firmware.upper()}-1", memory_mib=1024)  # fmt: skip
    vm = boot_node(spec)
    t0 = time.monotonic()
    node = wait_for("registration", lambda: registered_node(master, spec.mac(0)), vm)
    print(f"{firmware}: power-on -> registered in {time.monotonic() - t0:.0f} s")
    check_facts(node, spec, firmware)
    assert node["status"] == "online"
    kinds = [e["kind"] for e in timeline(master, node["id"])]
    assert [k for k in kinds if k in BOOT_ORDER][: len(BOOT_ORDER)] == BOOT_ORDER, kinds
    with master.admin() as client:
        assert len(client.get("/api/v1/nodes").json()) == 1


def test_one_node_through_an_outage_a_wrong_token_and_a_reboot(
    master: Master, boot_node: Any
) -> None:
    """One VM, one story (each boot under TCG costs minutes, so the checks share it):
    the master is down at the node's first report (the agent backs off); it comes back
    with a rotated token (the agent's old one is refused, and recorded); then with the
    node's token again (the agent retries and registers once); then the node reboots
    and is still one node."""
    spec = spec_for(master, "e2e-story")
    vm = boot_node(spec)
    wait_for("squashfs download", lambda: squashfs_fetched(master, spec.mac(0)), vm)
    db_url, port = master_db_url(master), int(master.url.rsplit(":", 1)[1])
    token_file = master.data_dir / "discovery.token"
    token = token_file.read_text()
    master.proc.terminate()
    master.proc.wait(timeout=20)
    time.sleep(60)  # down while the node boots and sends its first reports
    token_file.write_text(secrets.token_urlsafe(32) + "\n")  # >= 32 bytes, 0600: else refused
    try:
        with master_process(master.data_dir, fake_builds=False, database_url=db_url,
                            port=port) as rotated:  # fmt: skip
            wait_for("refusal", lambda: refused(rotated), vm)
            with rotated.admin() as client:
                assert client.get("/api/v1/nodes").json() == []
    finally:
        token_file.write_text(token)
    with master_process(master.data_dir, fake_builds=False, database_url=db_url,
                        port=port) as m3:  # fmt: skip
        first = wait_for(
            "registration after the retries", lambda: registered_node(m3, spec.mac(0)), vm
        )
        time.sleep(5)
        with m3.admin() as client:
            assert [n["id"] for n in client.get("/api/v1/nodes").json()] == [first["id"]]
        vm.stop()
        vm2 = boot_node(spec)

        def rebooted() -> dict[str, Any] | None:
            node = registered_node(m3, spec.mac(0))
            return node if node and node["boots"] >= 2 else None

        second = wait_for("second registration", rebooted, vm2)
        assert second["id"] == first["id"] and second["status"] == "online"
        with m3.admin() as client:
            assert len(client.get("/api/v1/nodes").json()) == 1


def squashfs_fetched(master: Master, mac: str) -> bool:
    return "squashfs-end" in event_kinds(master, mac)


def refused(master: Master) -> bool:
    return "refused" in event_kinds(master, None)


def event_kinds(master: Master, mac: str | None) -> list[str]:
    import sqlalchemy

    engine = sqlalchemy.create_engine(master_db_url(master))
    try:
        with engine.connect() as conn:
            query = "SELECT kind FROM boot_events" + (" WHERE mac = :mac" if mac else "")
            return [row[0] for row in conn.execute(sqlalchemy.text(query), {"mac": mac})]
    finally:
        engine.dispose()


def master_db_url(master: Master) -> str:
    return master.database_url
