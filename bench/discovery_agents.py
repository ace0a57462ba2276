"""Simulated discovery agents: distinct, realistic reports, made the way the real agent
makes them (livestrap.agent.collect on a fixture root, hashed by agent.report).

The template is the QEMU-guest fixture as the real collectors see it, widened to a
typical 2-socket server (16 DIMMs, 4 disks, 4 NICs, ~40 PCI functions), because a
fleet's facts are bigger than a VM's and their size is what registration parses and
stores. Every agent gets its own SMBIOS UUID, serial, MACs and disk serials; one in
twenty has a placeholder UUID, so the master must tell those apart by their MACs.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from livestrap.agent import AGENT_VERSION
from livestrap.agent.collect import collect_all
from livestrap.agent.report import facts_hash

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests/fixtures/agent/qemu-guest"
PLACEHOLDER_UUID = "03000200-0400-0500-0006-000700080009"
NO_UUID_EVERY = 20


def _replay(argv: list[str]) -> str | None:
    """The fixture's saved tool output, as the unit tests replay it."""
    saved = FIXTURE / "_tools" / "_".join(argv)
    return saved.read_text() if saved.is_file() else None


def server_template() -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Facts and failures of one server-sized node (collected, then widened)."""
    collected = collect_all(root=FIXTURE, runner=_replay)
    facts: dict[str, Any] = collected["facts"]
    facts["cpu"].update(sockets=2, cores=32, threads=64)
    dimm = facts["memory"]["dimms"][0]
    facts["memory"]["dimms"] = [
        dict(dimm, locator=f"CPU{s}_DIMM_{c}", size=32 * 2**30, speed=3200, part="M393A4K40DB3")
        for s in (1, 2)
        for c in "ABCDEFGH"
    ]
    facts["memory"]["total"] = 16 * 32 * 2**30
    facts["disks"] = [
        dict(copy.deepcopy(d), name=f"{d['name']}{n}") for n in range(2) for d in facts["disks"]
    ]
    facts["nics"] = [copy.deepcopy(facts["nics"][n % 2]) for n in range(4)]
    pci = facts["pci"]
    facts["pci"] = [
        dict(dev, address=f"0000:{bus:02x}:{dev['address'][8:]}") for bus in range(5) for dev in pci
    ]
    return facts, collected["failures"]


@dataclass
class SimAgent:
    """One simulated node: its identity, its first report, and what the master answered."""

    index: int
    boot_mac: str
    system_uuid: str | None
    facts_hash: str
    register_body: bytes
    node_id: str | None = None
    uptime0: int = 0

    def heartbeat_body(self, uptime_s: int) -> bytes:
        """A report without facts, exactly as agent.report sends one after the first."""
        body = {
            "agent_version": AGENT_VERSION,
            "image_id": "bench-image",
            "boot_mac": self.boot_mac,
            "node_id": self.node_id,
            "facts_hash": self.facts_hash,
            "facts": None,
            "failures": [],
            "uptime_s": self.uptime0 + uptime_s,
        }
        return json.dumps(body).encode()


def make_agents(count: int, seed: int = 1) -> list[SimAgent]:
    """`count` agents with distinct identities; deterministic for a seed."""
    rng = random.Random(seed)
    template, failures = server_template()
    agents = []
    for i in range(count):
        facts = copy.deepcopy(template)
        macs = [
            f"02:4c:{seed & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}:{n:02x}"
            for n in range(len(facts["nics"]))
        ]
        sane = i % NO_UUID_EVERY != NO_UUID_EVERY - 1
        system_uuid = str(uuid.UUID(int=rng.getrandbits(128), version=4)) if sane else None
        facts["system"].update(
            vendor="Dell Inc.",
            product="PowerEdge R650",
            serial=f"SN{seed:02d}{i:07d}",
            uuid=system_uuid or PLACEHOLDER_UUID,
            image_id="bench-image",
        )
        for n, (nic, mac) in enumerate(zip(facts["nics"], macs, strict=True)):
            nic.update(name=f"eno{n + 1}", mac=mac, pxe=n == 0)
        for n, disk in enumerate(facts["disks"]):
            disk["serial"] = f"S{i:07d}D{n}"
        uptime0 = rng.randrange(20, 90)
        body = {
            "agent_version": AGENT_VERSION,
            "image_id": "bench-image",
            "boot_mac": macs[0],
            "node_id": None,
            "facts_hash": facts_hash(facts),
            "facts": facts,
            "failures": failures,
            "uptime_s": uptime0,
        }
        agents.append(
            SimAgent(
                i,
                macs[0],
                system_uuid,
                body["facts_hash"],
                json.dumps(body).encode(),
                uptime0=uptime0,
            )
        )
    return agents
