"""A virtual node network-boots the active image and appears in the inventory; the
operator then acts on it. UEFI, and BIOS through a real dnsmasq, boot in
tests/integration/test_netns_dnsmasq.py."""

from __future__ import annotations

import functools
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from e2ekit import clone_data_dir, registered_node, wait_for
from livestrap.agent import __version__
from livestrap.netboot.qemu import NodeSpec
from livestrap.netboot.vm import kvm_usable
from masterproc import Master, free_port, master_process

pytestmark = pytest.mark.e2e

STORY_HEARTBEAT_S = 10  # the agent takes a queued action at its next heartbeat
ACTION_TIMEOUT_S = 600.0
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


def test_one_node_through_an_outage_a_wrong_token_actions_and_a_reboot(
    e2e_data_dir: Path, boot_node: Any, tmp_path: Path
) -> None:
    """One VM, one story (each boot under TCG costs minutes, so the checks share it):
    the master is down at the node's first report (the agent backs off); it comes back
    with a rotated token (the agent's old one is refused, and recorded); then with the
    node's token again (the agent retries and registers once). Then the operator acts on
    the running node: a newer agent from the master's repository (no rebuild, no
    reboot), a package that is not there (refused, nothing changes), a re-inspection, and
    a reboot, after which it is still one node."""
    data = clone_data_dir(e2e_data_dir, tmp_path / "data")
    start = functools.partial(master_process, data, fake_builds=False, port=free_port(),
                              database_url=f"sqlite:///{tmp_path / 'master.db'}",
                              heartbeat_s=STORY_HEARTBEAT_S)  # fmt: skip
    token_file = data / "discovery.token"
    with start() as first_master:
        spec = spec_for(first_master, "e2e-story", disks_gib=(2, 1), serial="E2E-STORY-1")
        vm = boot_node(spec)
        wait_for("squashfs download", lambda: squashfs_fetched(first_master, spec.mac(0)), vm)
        token = token_file.read_text()
    time.sleep(60)  # down while the node boots and sends its first reports
    token_file.write_text(secrets.token_urlsafe(32) + "\n")  # >= 32 bytes, 0600: else refused
    try:
        with start() as rotated:
            wait_for("refusal", lambda: refused(rotated), vm)
            with rotated.admin() as client:
                assert client.get("/api/v1/nodes").json() == []
    finally:
        token_file.write_text(token)
    with start() as m:
        first = wait_for(
            "registration after the retries", lambda: registered_node(m, spec.mac(0)), vm
        )
        check_facts(first, spec, "bios")  # the facts, as QEMU was told to make the machine
        kinds = [e["kind"] for e in timeline(m, first["id"])]
        assert [k for k in kinds if k in BOOT_ORDER][: len(BOOT_ORDER)] == BOOT_ORDER, kinds
        time.sleep(5)
        with m.admin() as client:
            assert [n["id"] for n in client.get("/api/v1/nodes").json()] == [first["id"]]
        act_on_the_running_node(m, first, spec.mac(0), vm, tmp_path)
        reboot = queue(m, "reboot", first["id"])
        wait_for("the node to go down", lambda: not vm.running(), vm)  # QEMU: -no-reboot
        assert action(m, reboot)["state"] == "succeeded"
        vm2 = boot_node(spec)

        def rebooted() -> dict[str, Any] | None:
            node = registered_node(m, spec.mac(0))
            return node if node and node["boots"] >= 2 else None

        second = wait_for("second registration", rebooted, vm2)
        assert second["id"] == first["id"] and second["status"] == "online"
        with m.admin() as client:
            assert len(client.get("/api/v1/nodes").json()) == 1


def act_on_the_running_node(
    m: Master, node: dict[str, Any], mac: str, vm: Any, tmp_path: Path
) -> None:
    """A newer agent published and installed; a package the repository lacks; reinspect."""
    old = node["agent_version"]
    new = f"{__version__}.1+e2e"
    assert subprocess.run(["dpkg", "--compare-versions", new, "gt", old]).returncode == 0
    debs = tmp_path / "debs"
    built = cli(m, "agent", "build-deb", "--version", new, "--out-dir", str(debs), client=False)
    cli(m, "repo", "publish", built.strip(), "--data-dir", str(m.data_dir), client=False)
    t0 = time.monotonic()
    installed = queue(m, "install", node["id"], "livestrap-agent")

    def new_agent() -> dict[str, Any] | None:
        ended = finished(m, installed)
        if ended is not None and ended["state"] != "succeeded":
            pytest.fail(f"the install ended {ended['state']}: {json.dumps(ended, indent=1)}")
        now = registered_node(m, mac)
        return now if now and now["agent_version"] == new else None

    wait_for("the new agent's report", new_agent, vm, timeout_s=ACTION_TIMEOUT_S,
             about=lambda: json.dumps(action(m, installed), indent=1))  # fmt: skip
    timings = {"install_to_version_s": round(time.monotonic() - t0, 1)}
    print(f"nodes install -> new agent_version reported in {timings['install_to_version_s']} s")
    assert action(m, installed)["state"] == "succeeded"
    kinds = [e["kind"] for e in timeline(m, node["id"])]
    assert "action-delivered" in kinds and "action-succeeded" in kinds, kinds
    before = registered_node(m, mac)
    t0 = time.monotonic()
    missing = queue(m, "install", node["id"], "livestrap-no-such-package")
    ended = wait_for("the refused install", lambda: finished(m, missing), vm, ACTION_TIMEOUT_S)
    timings["missing_s"] = round(time.monotonic() - t0, 1)
    assert ended["state"] == "failed", ended
    assert "not in the master's repository" in (ended["error"] or ""), ended
    after = registered_node(m, mac)
    assert after is not None and before is not None
    assert after["agent_version"] == new and after["facts"] == before["facts"]
    t0 = time.monotonic()
    again = queue(m, "reinspect", node["id"])
    done = wait_for("the re-inspection", lambda: finished(m, again), vm, ACTION_TIMEOUT_S)
    assert done["state"] == "succeeded", done
    timings["reinspect_s"] = round(time.monotonic() - t0, 1)
    record = os.environ.get("LIVESTRAP_ACTION_TIMINGS")  # bench/action_bench.py reads them
    if record:
        accel = "kvm" if kvm_usable() else "tcg"
        Path(record).write_text(json.dumps({**timings, "heartbeat_s": STORY_HEARTBEAT_S,
                                            "accel": accel}))  # fmt: skip


def cli(m: Master, *argv: str, client: bool = True) -> str:
    """`livestrap ARGV` as an operator types it; its stdout."""
    where = ["--master", m.url, "--data-dir", str(m.data_dir)] if client else []
    run = subprocess.run([sys.executable, "-m", "livestrap", *argv, *where],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert run.returncode == 0, (argv, run.stdout, run.stderr)
    return run.stdout


def queue(m: Master, kind: str, node_id: str, *packages: str) -> str:
    """Queue an action with the CLI; its id."""
    out = cli(m, "nodes", kind, node_id, *packages, "-o", "json")
    queued: list[dict[str, Any]] = json.loads(out)
    return str(queued[0]["id"])


def action(m: Master, action_id: str) -> dict[str, Any]:
    with m.admin() as client:
        found: dict[str, Any] = client.get(f"/api/v1/actions/{action_id}").json()
        return found


def finished(m: Master, action_id: str) -> dict[str, Any] | None:
    found = action(m, action_id)
    return found if found["state"] not in ("queued", "delivered") else None


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
