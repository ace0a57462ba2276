"""An operator's changes to a node: its name (unique, a DNS label) and its tags.

The name is checked against the other nodes first, so a taken name is a 409 that names
its owner, not a database error; the change goes on the node's timeline."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.errors import ConflictError
from livestrap.master.events import record_event
from livestrap.master.models import Node
from livestrap.master.schemas.nodes import NodeDetail
from livestrap.master.schemas.rules import NodePatch
from livestrap.master.services.node_tags import node_tags, replace_tags
from livestrap.master.services.nodes import find_node, show_node


def name_owner(session: Session, name: str) -> str | None:
    """The id of the node called `name`, if any."""
    return session.scalar(select(Node.id).where(Node.name == name))


def patch_node(session: Session, ref: str, patch: NodePatch, cutoff: float) -> NodeDetail:
    """Set the fields the patch carries; ConflictError (409) when the name is taken."""
    node = find_node(session, ref)
    change: dict[str, Any] = {}
    if "name" in patch.model_fields_set and patch.name != node.name:
        owner = name_owner(session, patch.name) if patch.name else None
        if owner is not None:
            raise ConflictError(f"the name {patch.name!r} belongs to node {owner}")
        change["name"] = {"from": node.name, "to": patch.name}
        node.name = patch.name
        session.flush()
    if patch.tags is not None:
        before = set(node_tags(session, node.id))
        after = set(replace_tags(session, node.id, patch.tags))
        if before != after:
            change["tags"] = {"added": sorted(after - before), "removed": sorted(before - after)}
    if change:
        record_event(session, "node-edited", node_id=node.id, detail=change)
    return show_node(session, node.id, cutoff)
