"""`nodes show` and `builds show` for people (kubectl describe style): pure functions from
the master's JSON to text lines, so they are tested without a master. Facts are read
defensively: an older or newer agent may send fewer or other keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from livestrap.cli.humanize import ago, binary_size, duration, link_speed, local_time
from livestrap.cli.output import plain_table

MAX_PACKAGES_NAMED = 8


def _dict(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Mapping[str, Any]]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


def _text(value: object) -> str:
    return "-" if value is None or value == "" else str(value)


def _names(value: object) -> str:
    """A list of strings (a node's answer: anything else is left out), comma separated."""
    names = [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
    return ", ".join(names) or "-"


def _yes(value: object) -> str:
    return "yes" if value else "no"


def aligned(pairs: Sequence[tuple[str, str]], indent: str = "") -> list[str]:
    """'Label:  value' lines with the values in one column."""
    width = max((len(label) for label, _ in pairs), default=0) + 1
    return [f"{indent}{label + ':':<{width}}  {value}" for label, value in pairs]


def _seen(iso: str | None, now: float | None) -> str:
    return "-" if not iso else f"{local_time(iso)} ({ago(iso, now)})"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def cpu_summary(cpu: Mapping[str, Any]) -> str:
    """'Intel Xeon Gold 6338: 2 sockets, 64 cores, 128 threads'."""
    counts = [
        _plural(cpu[key], key.rstrip("s"))
        for key in ("sockets", "cores", "threads")
        if isinstance(cpu.get(key), int)
    ]
    model = _text(cpu.get("model"))
    return f"{model}: {', '.join(counts)}" if counts else model


def memory_summary(memory: Mapping[str, Any]) -> str:
    dimms = memory.get("dimms")
    total = binary_size(memory.get("total"))
    return f"{total} ({_plural(len(dimms), 'DIMM')})" if isinstance(dimms, list) else total


def _link(nic: Mapping[str, Any]) -> str:
    if nic.get("operstate"):
        return str(nic["operstate"])
    carrier = nic.get("carrier")
    return "-" if carrier is None else ("up" if carrier else "no carrier")


def _table(title: str, headers: list[str], rows: list[list[str]]) -> list[str]:
    if not rows:
        return [f"{title}:  none reported"]
    return [f"{title}:", *("  " + line for line in plain_table(headers, rows))]


def describe_node(node: Mapping[str, Any], now: float | None = None) -> list[str]:
    """What an operator wants on one screen: identity, where it booted from, hardware."""
    facts = _dict(node.get("facts"))
    system = _dict(facts.get("system"))
    lines = aligned(
        [
            ("ID", _text(node.get("id"))),
            ("Status", _text(node.get("status"))),
            ("Vendor", _text(node.get("vendor") or system.get("vendor"))),
            ("Product", _text(node.get("product") or system.get("product"))),
            ("Serial", _text(node.get("serial") or system.get("serial"))),
            ("UUID", _text(node.get("system_uuid") or system.get("uuid"))),
            ("Firmware", _text(system.get("firmware"))),
            ("Boot MAC", _text(node.get("boot_mac"))),
            ("IP", _text(node.get("last_ip"))),
            ("Image", _text(node.get("image_id"))),
            ("Agent", _text(node.get("agent_version"))),
            ("Boots", _text(node.get("boots"))),
            ("First seen", _seen(node.get("first_seen_at"), now)),
            ("Last seen", _seen(node.get("last_seen_at"), now)),
            ("CPU", cpu_summary(_dict(facts.get("cpu"))) if facts.get("cpu") else "-"),
            ("Memory", memory_summary(_dict(facts.get("memory")))),
        ]
    )
    disks = [
        [_text(d.get("name")), binary_size(d.get("size")), _text(d.get("model")),
         _text(d.get("serial"))]
        for d in _list(facts.get("disks"))
    ]  # fmt: skip
    lines += _table("Disks", ["NAME", "SIZE", "MODEL", "SERIAL"], disks)
    nics = [
        [_text(n.get("name")), _text(n.get("mac")), _text(n.get("driver")), _link(n),
         link_speed(n.get("speed")), "yes" if n.get("pxe") else ""]
        for n in _list(facts.get("nics"))
    ]  # fmt: skip
    lines += _table("NICs", ["NAME", "MAC", "DRIVER", "LINK", "SPEED", "PXE"], nics)
    gaps = [
        [_text(g.get("slot")), _text(g.get("ids")), _text(g.get("class_name")),
         _text(g.get("status")), _names(g.get("missing_firmware"))]
        for g in _list(node.get("driver_gaps"))
    ]  # fmt: skip
    if gaps:  # the active image cannot drive these: the node's next boot would lack them
        lines += _table("Not driven by the active image",
                        ["SLOT", "IDS", "CLASS", "PROBLEM", "MISSING FIRMWARE"], gaps)  # fmt: skip
    failures = _list(node.get("failures"))
    if not failures:
        lines.append("Failures:  none")
    else:
        lines.append("Failures:")
        lines += [f"  {_text(f.get('collector'))}: {_text(f.get('error'))}" for f in failures]
    return lines


def _packages(names: object) -> str:
    if not isinstance(names, list) or not names:
        return "none extra"
    shown = ", ".join(str(n) for n in names[:MAX_PACKAGES_NAMED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > MAX_PACKAGES_NAMED else "")


def spec_summary(spec: Mapping[str, Any]) -> list[str]:
    """The few spec keys that tell builds apart; `-o yaml` shows the whole spec."""
    suite = " ".join(_text(spec.get(k)) for k in ("distro", "suite"))
    repos = [_text(r.get("name")) for r in _list(spec.get("repos"))]
    return aligned(
        [
            ("Label", _text(spec.get("label"))),
            ("Distro", f"{suite} ({_text(spec.get('arch'))})"),
            ("Mirror", _text(spec.get("mirror"))),
            ("Packages", _packages(spec.get("packages"))),
            ("Repos", ", ".join(repos) or "none extra"),
            ("Agent", _yes(spec.get("agent", True))),
        ],
        indent="  ",
    )


def _took(build: Mapping[str, Any]) -> str:
    start, end = build.get("started"), build.get("finished")
    if not (start and end):
        return ""
    seconds = datetime.fromisoformat(end).timestamp() - datetime.fromisoformat(start).timestamp()
    return f" (took {duration(seconds)})"


def describe_build(build: Mapping[str, Any], now: float | None = None) -> list[str]:
    """Where the build is or how it ended, its image, and what it builds."""
    progress = build.get("progress")
    image = _text(build.get("image_id"))
    if build.get("reused"):
        image += " (reused: an image with the same inputs existed)"
    lines = aligned(
        [
            ("ID", _text(build.get("id"))),
            ("State", _text(build.get("state"))),
            ("Stage", _text(build.get("stage"))),
            ("Progress", f"{progress:.0%}" if isinstance(progress, int | float) else "-"),
            ("Image", image),
            ("Activate", _yes(build.get("activate"))),
            ("Force", _yes(build.get("force"))),
            ("Created", _seen(build.get("created"), now)),
            ("Started", local_time(build.get("started"))),
            ("Finished", local_time(build.get("finished")) + _took(build)),
            ("Error", _text(build.get("error"))),
            ("Log", f"livestrap builds log {_text(build.get('id'))}"),
        ]
    )
    spec = _dict(build.get("spec"))
    return [*lines, "Spec:", *spec_summary(spec)] if spec else lines
