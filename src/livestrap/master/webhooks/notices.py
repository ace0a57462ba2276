"""The events' data, one function per emit point, so the inventory, the worker and the
image routes each add one call (and the payloads are defined in one place).

What a node says is hostile: only bounded columns go in (the ids, the MAC, the search
columns cut to 255), never the facts themselves; a receiver GETs the node for those."""

from __future__ import annotations

from sqlalchemy.orm import Session

from livestrap.master.models import Node
from livestrap.master.webhooks.outbox import emit

ERROR_CHARS = 1000  # of a build's error


def node_reported(session: Session, node: Node, created: bool, previous_hash: str | None,
                  at: float | None = None) -> None:  # fmt: skip
    """node.registered for a new node; node.facts_changed when its facts hash moved."""
    if created:
        data = {"node_id": node.id, "boot_mac": node.boot_mac, "ip": node.last_ip,
                "system_uuid": node.system_uuid, "vendor": node.vendor,
                "product": node.product, "serial": node.serial, "image_id": node.image_id,
                "agent_version": node.agent_version}  # fmt: skip
        emit(session, "node.registered", node.id, data, at=at)
    elif node.facts_hash != previous_hash:
        data = {"node_id": node.id, "facts_hash": node.facts_hash,
                "previous_facts_hash": previous_hash}  # fmt: skip
        emit(session, "node.facts_changed", node.id, data, at=at)


def build_finished(session: Session, build_id: str, state: str, image_id: str | None,
                   error: str | None) -> None:  # fmt: skip
    data = {"build_id": build_id, "state": state, "image_id": image_id,
            "error": error[:ERROR_CHARS] if error else None}  # fmt: skip
    emit(session, "build.finished", build_id, data)


def image_activated(session: Session, image_id: str, by: str) -> None:
    """`by`: api, console or build (a build with activate)."""
    emit(session, "image.activated", image_id, {"image_id": image_id, "by": by})
