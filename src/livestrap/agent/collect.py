"""Collectors: read /proc, /sys and optional tools into the facts the master stores.

Each `collect_x(data, failures, root, ...)` fills `data[x]` and appends
{"collector", "error"} to `failures` instead of raising: a node with a broken
dmidecode or an odd sysfs must still get registered. `root` points at a fixture
tree in tests; tools run through an injectable `Runner` (None = missing/failed).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import AGENT_VERSION
from .config import AgentConfig, normalize_mac
from .facts import (
    SECURE_BOOT_VAR,
    clean_dmi,
    disk_size_bytes,
    disk_transport,
    firmware_type,
    hex_id,
    parse_cpuinfo,
    parse_dmidecode_memory,
    parse_ethtool,
    parse_ip_addr_json,
    parse_lldpcli_keyvalue,
    parse_lspci_vmmnn,
    parse_meminfo,
    parse_vpd_pg80,
    pci_address_in_path,
    secure_boot_state,
)
from .probe import (
    Facts,
    Failures,
    Runner,
    fail,
    link_name,
    listdir,
    read,
    run_tool,
    sys_path,
    tool,
)

ROOT = Path("/")
EFIVARS = "sys/firmware/efi/efivars"
# Block devices that are not hardware a node owner would install onto.
VIRTUAL_DISK_PREFIXES = ("loop", "ram", "zram", "dm-", "nbd")


def _read_bytes(path: Path, limit: int = 64) -> bytes | None:
    """At most `limit` bytes of a small binary file (an EFI variable); None if unreadable."""
    try:
        with path.open("rb") as fh:
            return fh.read(limit)
    except OSError:
        return None


def collect_system(
    data: Facts,
    failures: Failures,
    root: Path = ROOT,
    image_id: str | None = None,
    boot_path: str | None = None,
) -> None:
    """Identity of the box: SMBIOS strings, firmware kind, running image and kernel."""
    dmi = root / "sys/class/dmi/id"
    fields = {
        "vendor": "sys_vendor",
        "product": "product_name",
        "serial": "product_serial",
        "uuid": "product_uuid",
    }
    system: dict[str, Any] = dict.fromkeys(fields)
    if dmi.is_dir():
        for key, name in fields.items():
            system[key] = clean_dmi(read(dmi / name, failures, "system"))
        if system["uuid"]:
            system["uuid"] = system["uuid"].lower()
    else:
        fail(failures, "system", f"{dmi}: no DMI/SMBIOS data exported by the firmware")
    efi = (root / "sys/firmware/efi").is_dir()
    system["firmware"] = firmware_type(efi)
    system["secure_boot"] = secure_boot_state(efi, _read_bytes(root / EFIVARS / SECURE_BOOT_VAR))
    system["boot_path"] = boot_path
    system["image_id"] = image_id
    system["kernel"] = read(root / "proc/sys/kernel/osrelease", failures, "system")
    data["system"] = system


def collect_cpu(data: Facts, failures: Failures, root: Path = ROOT) -> None:
    """Topology and flags from /proc/cpuinfo (lscpu is not needed for these)."""
    text = read(root / "proc/cpuinfo", failures, "cpu")
    data["cpu"] = parse_cpuinfo(text or "")


def collect_memory(
    data: Facts, failures: Failures, root: Path = ROOT, runner: Runner = run_tool
) -> None:
    """Usable RAM from /proc/meminfo; the DIMM inventory only when dmidecode works."""
    text = read(root / "proc/meminfo", failures, "memory")
    memory: dict[str, Any] = {"total": parse_meminfo(text or "").get("MemTotal"), "dimms": None}
    output = tool(runner, ["dmidecode", "-t", "memory"], failures, "memory")
    if output is not None:
        memory["dimms"] = parse_dmidecode_memory(output)
    data["memory"] = memory


def _disk_links(root: Path) -> dict[str, dict[str, list[str]]]:
    """udev's /dev/disk/by-id and by-path names, grouped by the kernel name they point to."""
    links: dict[str, dict[str, list[str]]] = {}
    for kind in ("by-id", "by-path"):
        directory = root / "dev/disk" / kind
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue  # no udev (containers, minimal VMs): no links, not a failure
        for name in names:
            target = link_name(directory / name)
            if target:
                entry = links.setdefault(target, {"by_id": [], "by_path": []})
                entry[kind.replace("-", "_")].append(name)
    return links


def _disk_serial(block: Path) -> str | None:
    for candidate in (block / "device/serial", block / "serial"):
        serial = clean_dmi(read(candidate))
        if serial:
            return serial
    try:
        return parse_vpd_pg80((block / "device/vpd_pg80").read_bytes())
    except OSError:
        return None


def collect_disks(data: Facts, failures: Failures, root: Path = ROOT) -> None:
    """Physical block devices from /sys/block, with the ids an operator matches on."""
    sys_block = root / "sys/block"
    links = _disk_links(root)
    disks: list[dict[str, Any]] = []
    for name in listdir(sys_block, failures, "disks"):
        if name.startswith(VIRTUAL_DISK_PREFIXES):
            continue
        block = sys_block / name
        size_text = read(block / "size", failures, "disks")
        try:
            size = disk_size_bytes(size_text) if size_text is not None else None
        except ValueError:
            fail(failures, "disks", f"{block / 'size'}: not a sector count: {size_text!r}")
            size = None
        wwn = read(block / "device/wwid") or read(block / "wwid")
        disks.append(
            {
                "name": name,
                "size": size,
                "model": clean_dmi(read(block / "device/model")),
                "serial": _disk_serial(block),
                "wwn": wwn or None,
                "rotational": read(block / "queue/rotational") == "1",
                "removable": read(block / "removable") == "1",
                "transport": disk_transport(sys_path(root, block)),
                "links": links.get(name, {"by_id": [], "by_path": []}),
            }
        )
    data["disks"] = disks


def _int_or_none(text: str | None) -> int | None:
    try:
        value = int(text) if text is not None else None
    except ValueError:
        return None
    return value if value is not None and value >= 0 else None


def collect_nics(
    data: Facts,
    failures: Failures,
    root: Path = ROOT,
    runner: Runner = run_tool,
    boot_mac: str | None = None,
) -> None:
    """Physical NICs (those with a `device` link), their link, addresses and LLDP peer."""
    sys_net = root / "sys/class/net"
    addresses: dict[str, list[dict[str, Any]]] = {}
    output = tool(runner, ["ip", "-j", "addr", "show"], failures, "nics")
    if output is not None:
        try:
            addresses = parse_ip_addr_json(output)
        except ValueError as exc:
            fail(failures, "nics", str(exc))
    lldp: dict[str, dict[str, Any]] = {}
    output = tool(runner, ["lldpcli", "-f", "keyvalue", "show", "neighbors"], failures, "nics")
    if output is not None:
        lldp = parse_lldpcli_keyvalue(output)
    nics: list[dict[str, Any]] = []
    ethtool_failed = False
    for name in listdir(sys_net, failures, "nics"):
        base = sys_net / name
        if name == "lo" or not os.path.lexists(base / "device"):
            continue  # bridges, bonds, tunnels, ifb: nothing to cable
        mac = normalize_mac(read(base / "address", failures, "nics") or "")
        carrier = read(base / "carrier")  # EINVAL while the interface is down
        nic: dict[str, Any] = {
            "name": name,
            "mac": mac,
            "driver": link_name(base / "device/driver"),
            "pci_address": pci_address_in_path(sys_path(root, base / "device")),
            "operstate": read(base / "operstate"),
            "carrier": None if carrier is None else carrier == "1",
            "speed": _int_or_none(read(base / "speed")),
            "duplex": None,
            "pxe": boot_mac is not None and mac == boot_mac,
            "addresses": addresses.get(name, []),
            "lldp": lldp.get(name),
        }
        ethtool = runner(["ethtool", name])
        if ethtool is None:
            ethtool_failed = True
        else:
            parsed = parse_ethtool(ethtool)
            nic["speed"] = parsed["speed"] or nic["speed"]
            nic["duplex"] = parsed["duplex"]
            if nic["carrier"] is None:
                nic["carrier"] = parsed["link"]
        nics.append(nic)
    if ethtool_failed:
        fail(failures, "nics", "`ethtool IFACE`: tool missing or failed")
    data["nics"] = nics


def collect_pci(
    data: Facts, failures: Failures, root: Path = ROOT, runner: Runner = run_tool
) -> None:
    """PCI functions from sysfs; lspci, when present, only adds human-readable names."""
    sys_pci = root / "sys/bus/pci/devices"
    devices: list[dict[str, Any]] = []
    for address in listdir(sys_pci, failures, "pci"):
        base = sys_pci / address

        def ident(name: str, base: Path = base) -> str | None:
            text = read(base / name)
            return hex_id(text) if text else None

        devices.append(
            {
                "address": address,
                "class": ident("class"),
                "vendor": ident("vendor"),
                "device": ident("device"),
                "subsystem_vendor": ident("subsystem_vendor"),
                "subsystem_device": ident("subsystem_device"),
                "driver": link_name(base / "driver"),
                "class_name": None,
                "vendor_name": None,
                "device_name": None,
            }
        )
    output = tool(runner, ["lspci", "-vmmnn", "-D"], failures, "pci")
    if output is not None:
        try:
            names = {entry["address"]: entry for entry in parse_lspci_vmmnn(output)}
        except ValueError as exc:
            fail(failures, "pci", str(exc))
            names = {}
        for device in devices:
            entry = names.get(device["address"], {})
            for key in ("class_name", "vendor_name", "device_name"):
                device[key] = entry.get(key)
    data["pci"] = devices


def collect_all(
    config: AgentConfig | None = None, root: Path = ROOT, runner: Runner = run_tool
) -> dict[str, Any]:
    """Run every collector; one crashing collector becomes a failure, never an exception."""
    config = config or AgentConfig()
    facts: Facts = {}
    failures: Failures = []
    steps: list[tuple[str, Callable[[], None]]] = [
        ("system", lambda: collect_system(facts, failures, root, config.image, config.boot_path)),
        ("cpu", lambda: collect_cpu(facts, failures, root)),
        ("memory", lambda: collect_memory(facts, failures, root, runner)),
        ("disks", lambda: collect_disks(facts, failures, root)),
        ("nics", lambda: collect_nics(facts, failures, root, runner, config.boot_mac)),
        ("pci", lambda: collect_pci(facts, failures, root, runner)),
    ]
    for name, step in steps:
        try:
            step()
        except Exception as exc:  # a parser bug must not cost the whole report
            fail(failures, name, f"collector crashed: {type(exc).__name__}: {exc}")
            facts.setdefault(name, None)
    return {"agent_version": AGENT_VERSION, "facts": facts, "failures": failures}
