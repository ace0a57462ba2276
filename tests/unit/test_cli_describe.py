"""`nodes show` / `builds show` describe views: node and build JSON in, text lines out."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from test_agent_collect import QEMU, replay

from livestrap.agent.collect import collect_all
from livestrap.agent.config import AgentConfig
from livestrap.cli.describe import cpu_summary, describe_build, describe_node
from livestrap.cli.humanize import ago, binary_size, duration, link_speed

pytestmark = pytest.mark.unit

NOW = datetime.fromisoformat("2024-05-01T12:05:00Z").timestamp()


def qemu_node() -> dict[str, Any]:
    """GET /api/v1/nodes/{id} for a node whose agent reported the qemu-guest fixture."""
    config = AgentConfig(url="http://m", image="img-1", boot_mac="52:54:00:12:34:56")
    report = collect_all(config, root=QEMU, runner=replay(QEMU))
    system = report["facts"]["system"]
    return {
        "id": "0f3c1d2e-1111-4222-8333-444455556666",
        "status": "online",
        "system_uuid": system["uuid"],
        "vendor": system["vendor"],
        "product": system["product"],
        "serial": system["serial"],
        "boot_mac": "52:54:00:12:34:56",
        "last_ip": "10.0.2.15",
        "image_id": "img-1",
        "agent_version": "0.1.0+src1a2b",
        "boots": 2,
        "first_seen_at": "2024-05-01T12:00:00Z",
        "last_seen_at": "2024-05-01T12:04:48Z",
        "macs": ["52:54:00:12:34:56", "52:54:00:12:34:57"],
        "heartbeat_s": 30,
        "facts_hash": "x",
        "facts": report["facts"],
        "failures": report["failures"],
    }


def field(lines: list[str], label: str) -> str:
    line = next(line for line in lines if line.startswith(f"{label}:"))
    return line.split(":", 1)[1].strip()


def test_describe_node_from_real_facts() -> None:
    lines = describe_node(qemu_node(), now=NOW)
    assert field(lines, "ID") == "0f3c1d2e-1111-4222-8333-444455556666"
    assert field(lines, "Status") == "online"
    assert field(lines, "Vendor") == "QEMU"
    assert field(lines, "Product") == "Standard PC (Q35 + ICH9, 2009)"
    assert field(lines, "Serial") == "LS-QEMU-0001"
    assert field(lines, "UUID") == "6f1a2b3c-4d5e-4f60-8172-93a4b5c6d7e8"
    assert field(lines, "Firmware") == "bios"
    assert field(lines, "Boot MAC") == "52:54:00:12:34:56"
    assert field(lines, "IP") == "10.0.2.15"
    assert field(lines, "Image") == "img-1"
    assert field(lines, "Agent") == "0.1.0+src1a2b"
    assert field(lines, "Boots") == "2"
    assert field(lines, "Last seen").endswith("(12s ago)")
    assert field(lines, "First seen").endswith("(5m ago)")
    assert (
        field(lines, "CPU") == "Intel Core Processor (Skylake, IBRS): 1 socket, 2 cores, 4 threads"
    )
    assert field(lines, "Memory") == "3.8 GiB (1 DIMM)"
    disks = lines[lines.index("Disks:") + 1 : lines.index("NICs:")]
    assert [d.split() for d in disks] == [
        ["NAME", "SIZE", "MODEL", "SERIAL"],
        ["sda", "100.0", "GiB", "QEMU", "HARDDISK", "LSSATA0001"],
        ["vda", "20.0", "GiB", "-", "LSVIRTIO0001"],
    ]
    nics = lines[lines.index("NICs:") + 1 : lines.index("Failures:")]
    assert [n.split() for n in nics] == [
        ["NAME", "MAC", "DRIVER", "LINK", "SPEED", "PXE"],
        ["enp0s3", "52:54:00:12:34:56", "virtio_net", "up", "-", "yes"],
        ["enp0s4", "52:54:00:12:34:57", "e1000", "up", "1", "Gb/s"],
    ]
    assert lines[-1] == "  nics: `lldpcli -f keyvalue show neighbors`: tool missing or failed"


def test_describe_node_aligns_the_values() -> None:
    head = describe_node(qemu_node(), now=NOW)[:16]
    assert len({line.index(line.split(":", 1)[1].strip()) for line in head}) == 1


def test_describe_node_with_partial_or_odd_facts() -> None:
    node = {**qemu_node(), "vendor": None, "last_ip": None, "failures": []}
    node["facts"] = {"system": {"vendor": "Acme"}, "cpu": {"model": "x"}, "disks": ["junk"],
                     "nics": None, "memory": {"total": "lots"}}  # fmt: skip
    lines = describe_node(node, now=NOW)
    assert field(lines, "Vendor") == "Acme"  # from the facts when the summary has none
    assert field(lines, "IP") == "-"
    assert field(lines, "CPU") == "x"
    assert field(lines, "Memory") == "-"
    assert "Disks:  none reported" in lines and "NICs:  none reported" in lines
    assert lines[-1] == "Failures:  none"
    assert describe_node({"id": "n"})[0] == "ID:          n"  # nothing else known


def test_describe_build() -> None:
    build = {
        "id": "b1", "seq": 3, "state": "succeeded", "stage": "commit", "progress": 1.0,
        "created": "2024-05-01T12:00:00Z", "started": "2024-05-01T12:00:02Z",
        "finished": "2024-05-01T12:03:07Z", "image_id": "rack-20240501-120002", "reused": True,
        "error": None, "activate": True, "force": False, "log_url": "/api/v1/builds/b1/log",
        "spec": {"label": "rack", "distro": "debian", "suite": "bookworm", "arch": "amd64",
                 "mirror": "http://mirror.example/debian", "packages": [f"p{i}" for i in range(10)],
                 "repos": [{"name": "product"}, {"name": "tools"}], "agent": False},
    }  # fmt: skip
    lines = describe_build(build, now=NOW)
    assert field(lines, "State") == "succeeded"
    assert field(lines, "Progress") == "100%"
    assert field(lines, "Image").startswith("rack-20240501-120002 (reused")
    assert field(lines, "Activate") == "yes" and field(lines, "Force") == "no"
    assert field(lines, "Created").endswith("(5m ago)")
    assert field(lines, "Finished").endswith("(took 3m05s)")
    assert field(lines, "Error") == "-"
    assert field(lines, "Log") == "livestrap builds log b1"
    spec = [line.strip() for line in lines[lines.index("Spec:") + 1 :]]
    assert field(spec, "Distro") == "debian bookworm (amd64)"
    assert field(spec, "Packages") == "p0, p1, p2, p3, p4, p5, p6, p7, ... (10 in all)"
    assert field(spec, "Repos") == "product, tools"
    assert field(spec, "Agent") == "no"


def test_describe_queued_build() -> None:
    lines = describe_build({"id": "b2", "state": "queued", "progress": 0.0, "spec": {}})
    assert field(lines, "Started") == "-" and field(lines, "Finished") == "-"
    assert "Spec:" not in lines


def test_humanize() -> None:
    assert ago("2024-05-01T12:04:50Z", NOW) == "10s ago"
    assert ago("2024-04-29T12:05:00Z", NOW) == "2d ago"
    assert ago(None) == "-"
    assert binary_size(4111212544) == "3.8 GiB" and binary_size(512) == "512 B"
    assert binary_size(None) == "-" and binary_size(True) == "-"
    assert link_speed(100) == "100 Mb/s" and link_speed(25000) == "25 Gb/s"
    assert link_speed(2500) == "2.5 Gb/s" and link_speed(-1) == "-"
    assert duration(42) == "42s" and duration(3725) == "1h02m"
    assert cpu_summary({"model": "Xeon", "sockets": 2, "cores": 1}) == "Xeon: 2 sockets, 1 core"
