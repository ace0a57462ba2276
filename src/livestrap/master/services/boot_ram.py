"""The RAM a known node last reported, for /boot/ipxe's refusal of nodes too small for
the active image (its boot_ram_mb: livestrap.builder.guards). Unknown nodes, and nodes
whose facts say nothing of memory, boot as before."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from livestrap.master.db import Database
from livestrap.master.events import node_for_mac, normalize_mac
from livestrap.master.models import Node

MIB = 1 << 20
log = logging.getLogger(__name__)


def reported_ram_mib(facts: Mapping[str, Any] | None) -> int | None:
    """MiB of RAM installed in a node, the DIMMs' sizes summed as dmidecode saw them (what
    boot_ram_mb counts); None when the facts do not have them. MemTotal alone is not held
    to the formula: it is what is left after firmware and kernel took theirs (205.8 of
    256 MiB on a QEMU node), so a node that would boot could be refused."""
    memory = facts.get("memory") if isinstance(facts, Mapping) else None
    if not isinstance(memory, Mapping):
        return None
    dimms = memory.get("dimms")
    sizes = (
        [d.get("size") for d in dimms if isinstance(d, Mapping)] if isinstance(dimms, list) else []
    )
    installed = sum(s for s in sizes if isinstance(s, int) and not isinstance(s, bool) and s > 0)
    return installed // MIB if installed > 0 else None


def node_ram_mib(db: Database, mac: str | None) -> int | None:
    """MiB of RAM the node owning `mac` last reported; None for an unknown MAC, or when
    the database cannot say (logged: the node boots, as it would have before)."""
    mac = normalize_mac(mac)
    if mac is None:
        return None
    try:
        with db.session() as session:
            node_id = node_for_mac(session, mac)
            node = session.get(Node, node_id) if node_id else None
            return reported_ram_mib(node.facts) if node is not None else None
    except SQLAlchemyError:
        log.exception("could not read the RAM of the node with MAC %s", mac)
        return None
