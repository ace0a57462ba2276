"""Which nodes a bulk action goes to (POST /api/v1/actions): a selector's conditions,
all of which must hold, as one query of node ids."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.errors import LivestrapError, NotFoundError
from livestrap.master.events import normalize_mac
from livestrap.master.inventory import online_cutoff
from livestrap.master.models import Node, NodeMac
from livestrap.master.schemas.actions import Selector
from livestrap.master.services.node_tags import node_ids_with_tag


class BadSelector(LivestrapError):
    """A selector that selects by nothing, or names a MAC that is no MAC (400)."""


def selected_nodes(
    session: Session, selector: Selector, heartbeat_s: int, offline_after: int, now: float
) -> list[str]:
    """The ids of the nodes every condition of `selector` holds for, oldest first.
    Ids and MACs the master does not know are a NotFoundError naming the first one."""
    if selector.is_empty():
        raise BadSelector("selector: give all, status, tag, macs or ids (all alone: every node)")
    query = select(Node.id).order_by(Node.first_seen_at, Node.id)
    if selector.status is not None:
        cutoff = online_cutoff(now, heartbeat_s, offline_after)
        online = Node.last_seen_at >= cutoff
        query = query.where(online if selector.status == "online" else ~online)
    if selector.tag is not None:
        query = query.where(Node.id.in_(node_ids_with_tag(session, selector.tag)))
    if selector.ids is not None:
        wanted = set(selector.ids)
        known = set(session.scalars(select(Node.id).where(Node.id.in_(wanted))))
        _all_known(wanted - known, "node")
        query = query.where(Node.id.in_(known))
    if selector.macs is not None:
        macs = _macs(selector.macs)
        rows = session.execute(select(NodeMac.mac, NodeMac.node_id).where(NodeMac.mac.in_(macs)))
        owners = {mac: node for mac, node in rows}
        _all_known(set(macs) - set(owners), "node with MAC")
        query = query.where(Node.id.in_(set(owners.values())))
    return list(session.scalars(query))


def _macs(values: list[str]) -> list[str]:
    macs = []
    for value in values:
        mac = normalize_mac(value)
        if mac is None:
            raise BadSelector(f"selector.macs: not a MAC address: {value[:40]!r}")
        macs.append(mac)
    return macs


def _all_known(unknown: set[Any], what: str) -> None:
    if unknown:
        first = sorted(unknown)[0]
        more = f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""
        raise NotFoundError(f"no {what} {first!r}{more}")
