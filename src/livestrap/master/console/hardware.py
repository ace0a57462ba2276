"""A node's facts laid out for reading: label/value pairs and table rows of text, from
whatever the agent sent. Pure and defensive (an older or newer agent may send other
keys, a hostile one anything): every value becomes bounded text, every list is capped
with a count of the rest. The template escapes it all."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from livestrap.master.console.render import size

MAX_TEXT = 200
MAX_ROWS = {"disks": 64, "nics": 64, "pci": 128, "dimms": 64}
Row = list[str]


@dataclass
class Table:
    rows: list[Row] = field(default_factory=list)
    more: int = 0  # rows not shown


@dataclass
class Hardware:
    system: list[tuple[str, str]]
    cpu: list[tuple[str, str]]
    memory: list[tuple[str, str]]
    dimms: Table
    disks: Table
    nics: Table
    pci: Table


def text(value: object) -> str:
    if value is None or value == "" or isinstance(value, dict | list):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    shown = str(value)
    return shown if len(shown) <= MAX_TEXT else shown[: MAX_TEXT - 1] + "…"


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: object) -> int | None:
    """A whole number as JSON gives it (true/false are not counts)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _scalar(value: object) -> object:
    """A value that reads as text (a string or number), else None: no dict or list repr."""
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else None


def _table(name: str, items: object, row: Any) -> Table:
    entries = [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []
    cap = MAX_ROWS[name]
    return Table([row(e) for e in entries[:cap]], max(0, len(entries) - cap))


def binary_size(value: object) -> str:
    n = _count(value)
    return size(n) if n is not None and n >= 0 else "-"


def link_speed(mbps: object) -> str:
    """Mb/s as the agent reads it from sysfs (-1: no link)."""
    n = _count(mbps)
    if n is None or n <= 0:
        return "-"
    return f"{n} Mb/s" if n < 1000 else f"{n / 1000:g} Gb/s"


def _cpu(cpu: Mapping[str, Any]) -> str:
    """The model, then how many sockets, cores and threads."""
    counts = {k: _count(cpu.get(k)) for k in ("sockets", "cores", "threads")}
    parts = [f"{n} {k if n != 1 else k[:-1]}" for k, n in counts.items() if n is not None]
    return text(f"{text(cpu.get('model'))}: {', '.join(parts)}" if parts else cpu.get("model"))


def _memory(memory: Mapping[str, Any]) -> str:
    dimms = memory.get("dimms")
    count = f" ({len(dimms)} DIMMs)" if isinstance(dimms, list) else ""
    return binary_size(memory.get("total")) + count


def _link(nic: Mapping[str, Any]) -> str:
    if state := _scalar(nic.get("operstate")):
        return text(state)
    carrier = nic.get("carrier")
    return "-" if carrier is None else ("up" if carrier else "no carrier")


def _lldp(nic: Mapping[str, Any]) -> str:
    """The switch and port the NIC is plugged into, as LLDP told the agent."""
    lldp = _dict(nic.get("lldp"))
    switch = _scalar(lldp.get("chassis_name")) or _scalar(lldp.get("chassis_id"))
    port = _scalar(lldp.get("port_id")) or _scalar(lldp.get("port_descr"))
    if not switch and not port:
        return "-"
    return text(f"{switch or '?'} port {port or '?'}")


def _addresses(nic: Mapping[str, Any]) -> str:
    items = nic.get("addresses")
    found = [a for a in items if isinstance(a, Mapping)][:8] if isinstance(items, list) else []
    shown = ", ".join(f"{text(a.get('address'))}/{text(a.get('prefixlen'))}" for a in found)
    return text(shown) if found else "-"


def _on_off(value: object) -> str:
    """The agent's secure_boot: true, false, or null (a UEFI machine that did not say)."""
    return {True: "on (enforced)", False: "off"}.get(value, "-") if isinstance(value, bool) else "-"


def hardware(facts: object) -> Hardware:
    """The facts of one node, whatever their shape: a wrong type reads as "-", never fails."""
    facts = _dict(facts)
    system, cpu, memory = (_dict(facts.get(k)) for k in ("system", "cpu", "memory"))
    flags = _dict(cpu.get("flags"))
    return Hardware(
        system=[(label, text(system.get(key))) for label, key in (
            ("Vendor", "vendor"), ("Product", "product"), ("Serial", "serial"),
            ("UUID", "uuid"), ("Firmware", "firmware"), ("Image", "image_id"),
            ("Kernel", "kernel"), ("Boot path", "boot_path"))]
        + [("Secure Boot", _on_off(system.get("secure_boot")))],
        cpu=[("Model", _cpu(cpu) if cpu else "-"),
             ("Features", text(", ".join(sorted(k for k, v in flags.items() if v is True))))],
        memory=[("Total", _memory(memory) if memory else "-")],
        dimms=_table("dimms", memory.get("dimms"), lambda d: [
            text(d.get("locator")), binary_size(d.get("size")), text(d.get("type")),
            text(d.get("speed")), text(d.get("manufacturer")), text(d.get("serial"))]),
        disks=_table("disks", facts.get("disks"), lambda d: [
            text(d.get("name")), binary_size(d.get("size")), text(d.get("model")),
            text(d.get("serial")), text(d.get("transport")),
            "HDD" if d.get("rotational") else "SSD"]),
        nics=_table("nics", facts.get("nics"), lambda n: [
            text(n.get("name")), text(n.get("mac")), text(n.get("driver")), _link(n),
            link_speed(n.get("speed")), "yes" if n.get("pxe") is True else "",
            _addresses(n), _lldp(n)]),
        pci=_table("pci", facts.get("pci"), lambda p: [
            text(p.get("address")), text(_scalar(p.get("class_name")) or p.get("class")),
            text(_scalar(p.get("vendor_name")) or p.get("vendor")),
            text(_scalar(p.get("device_name")) or p.get("device")), text(p.get("driver"))]),
    )  # fmt: skip
