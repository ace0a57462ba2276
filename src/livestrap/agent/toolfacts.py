"""Pure parsers for the optional tools' output (dmidecode, lspci, ethtool, lldpcli, ip).

Split from `facts` only to keep modules small; import them from `facts`. Each
parser takes the tool's stdout as run with LC_ALL=C and raises ValueError only on
output that is not that tool's format at all (the collector records a failure).
"""

from __future__ import annotations

import json
import re
from typing import Any

_UNSET = frozenset(
    {"", "unknown", "not specified", "not provided", "none", "no dimm", "not installed", "other"}
)
_SIZE_UNITS = {"bytes": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3, "tb": 1024**4}
_EMPTY_SLOT = frozenset({"no module installed", "not installed", "0 mb", "0 gb", "0 bytes"})
_LSPCI_ID = re.compile(r"^(?P<name>.*?)\s*\[(?P<id>[0-9a-f]{4,6})\]\Z")
_SHORT_SLOT = re.compile(r"^[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]\Z")
_LLDP_KEY = re.compile(
    r"^lldp\.(?P<iface>.+?)\.(?P<key>(?:via|rid|age|chassis|port|vlan|ppvid|pi|lldp-med"
    r"|unknown-tlvs)(?:\..+)?)\Z"
)
_CHASSIS_ID_KEYS = ("mac", "local", "ip", "ifname", "ifalias")
_PORT_ID_KEYS = ("ifname", "mac", "local", "ip", "ifalias")


def _unset_to_none(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    return None if text.lower() in _UNSET else text


def _dmi_size(value: str) -> int | None:
    match = re.match(r"^(\d+)\s*(bytes|kB|MB|GB|TB)\Z", value.strip(), re.IGNORECASE)
    if not match:
        return None
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]


def _dmi_speed(value: str) -> int | None:
    # dmidecode < 3.2 printed MT/s values with a "MHz" label; both mean transfers/s here.
    match = re.match(r"^(\d+)\s*(MT/s|MHz)\Z", value.strip())
    return int(match.group(1)) if match else None


def parse_dmidecode_memory(text: str) -> list[dict[str, Any]]:
    """`dmidecode -t memory`: one dict per populated DIMM (type 17 records).

    Empty slots ("No Module Installed", size 0) are skipped; sizes become bytes.
    """
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("Handle "):
            current = None
        elif line.strip() == "Memory Device" and not line.startswith("\t"):
            current = {}
            records.append(current)
        elif current is not None and line.startswith("\t") and not line.startswith("\t\t"):
            key, sep, value = line.strip().partition(":")
            if sep:
                current[key.strip()] = value.strip()
    dimms: list[dict[str, Any]] = []
    for record in records:
        size_text = record.get("Size", "")
        if size_text.lower() in _EMPTY_SLOT:
            continue
        dimms.append(
            {
                "locator": _unset_to_none(record.get("Locator")),
                "size": _dmi_size(size_text),
                "type": _unset_to_none(record.get("Type")),
                "speed": _dmi_speed(record.get("Speed", "")),
                "manufacturer": _unset_to_none(record.get("Manufacturer")),
                "serial": _unset_to_none(record.get("Serial Number")),
                "part": _unset_to_none(record.get("Part Number")),
            }
        )
    return dimms


def _split_lspci(value: str) -> tuple[str | None, str | None]:
    match = _LSPCI_ID.match(value.strip())
    if not match:
        return (value.strip() or None, None)
    return (match.group("name") or None, match.group("id"))


def parse_lspci_vmmnn(text: str) -> list[dict[str, Any]]:
    """`lspci -vmmnn -D`: blank-line separated `Key:<TAB>Value` records.

    Chosen over `-mm -n` because one run gives both names and ids: "Intel
    Corporation [8086]". Without -D the slot lacks the domain; 0000 is assumed.
    """
    devices: list[dict[str, Any]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        record: dict[str, str] = {}
        for line in chunk.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                record[key.strip()] = value.strip()
        if "Slot" not in record:
            continue
        slot = record["Slot"].lower()
        class_name, class_id = _split_lspci(record.get("Class", ""))
        vendor_name, vendor_id = _split_lspci(record.get("Vendor", ""))
        device_name, device_id = _split_lspci(record.get("Device", ""))
        devices.append(
            {
                "address": f"0000:{slot}" if _SHORT_SLOT.match(slot) else slot,
                "class_id": class_id,
                "class_name": class_name,
                "vendor_id": vendor_id,
                "vendor_name": vendor_name,
                "device_id": device_id,
                "device_name": device_name,
                "rev": record.get("Rev"),
            }
        )
    if text.strip() and not devices:
        raise ValueError("no `Slot:` records: not `lspci -vmmnn` output")
    return devices


def parse_ethtool(text: str) -> dict[str, Any]:
    """`ethtool IFACE`: speed (Mb/s or None), duplex ("full"/"half"/None), link (bool/None)."""
    result: dict[str, Any] = {"speed": None, "duplex": None, "link": None}
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        value = value.strip()
        if not sep:
            continue
        if key == "Speed":
            match = re.match(r"^(\d+)\s*Mb/s\Z", value)
            result["speed"] = int(match.group(1)) if match else None
        elif key == "Duplex":
            result["duplex"] = value.lower() if value.lower() in ("full", "half") else None
        elif key == "Link detected":
            result["link"] = {"yes": True, "no": False}.get(value.lower())
    return result


def parse_lldpcli_keyvalue(text: str) -> dict[str, dict[str, Any]]:
    """`lldpcli -f keyvalue show neighbors`: the first neighbour seen on each interface.

    Keys look like `lldp.eth0.chassis.name=leaf1`; the chassis/port id key is named
    after its subtype (`chassis.mac=`, `port.ifname=`). Interface names may contain
    dots (VLANs), hence the anchored section names in the key pattern.
    """
    raw: dict[str, dict[str, str]] = {}
    complete: set[str] = set()
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        match = _LLDP_KEY.match(key.strip()) if sep else None
        if not match or match.group("iface") in complete:
            continue
        iface, field = match.group("iface"), match.group("key")
        fields = raw.setdefault(iface, {})
        if field == "via" and "via" in fields:  # a second neighbour starts: keep the first
            complete.add(iface)
            continue
        fields.setdefault(field, value.strip())
    neighbours: dict[str, dict[str, Any]] = {}
    for iface, fields in raw.items():
        chassis_id = next(
            (fields[f"chassis.{k}"] for k in _CHASSIS_ID_KEYS if f"chassis.{k}" in fields), None
        )
        port_id = next((fields[f"port.{k}"] for k in _PORT_ID_KEYS if f"port.{k}" in fields), None)
        neighbours[iface] = {
            "chassis_name": fields.get("chassis.name"),
            "chassis_id": chassis_id,
            "port_id": port_id,
            "port_descr": fields.get("port.descr"),
        }
    return neighbours


def parse_ip_addr_json(text: str) -> dict[str, list[dict[str, Any]]]:
    """`ip -j addr show`: addresses per interface as {family, address, prefixlen, scope}."""
    try:
        links = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"`ip -j addr` did not print JSON: {exc}") from exc
    if not isinstance(links, list):
        raise ValueError("`ip -j addr` JSON is not a list of links")
    result: dict[str, list[dict[str, Any]]] = {}
    for link in links:
        if not isinstance(link, dict) or "ifname" not in link:
            continue
        addresses = []
        for info in link.get("addr_info") or []:
            family = {"inet": "ipv4", "inet6": "ipv6"}.get(str(info.get("family")))
            if family is None or "local" not in info:
                continue
            addresses.append(
                {
                    "family": family,
                    "address": info["local"],
                    "prefixlen": info.get("prefixlen"),
                    "scope": info.get("scope"),
                }
            )
        result[str(link["ifname"])] = addresses
    return result
