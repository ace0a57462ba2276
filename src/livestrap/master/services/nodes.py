"""Nodes as operators read them: found by id or unique id prefix, listed and their
timelines paged (master.queries), and the one mapper from a row to a NodeSummary (the
detail view extends it); what a report does to a node is master.inventory."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from livestrap.errors import NotFoundError
from livestrap.master.config import MasterSettings
from livestrap.master.inventory import node_macs, node_query, online_cutoff, status_of, timeline
from livestrap.master.lookup import full_id
from livestrap.master.models import BootEvent, Node
from livestrap.master.queries import cursor
from livestrap.master.schemas.nodes import NodeDetail, NodeStatus, NodeSummary, TimelineEvent
from livestrap.master.services.convert import utc
from livestrap.master.services.node_tags import node_tags, tags_of

T = TypeVar("T")
Page = tuple[list[T], str | None]  # the rows, and the cursor of the next page or None


class NodeRow(Protocol):
    """What both a Node and a row of node_query have."""

    @property
    def id(self) -> str: ...
    @property
    def system_uuid(self) -> str | None: ...
    @property
    def boot_mac(self) -> str | None: ...
    @property
    def last_ip(self) -> str | None: ...
    @property
    def image_id(self) -> str | None: ...
    @property
    def agent_version(self) -> str | None: ...
    @property
    def boots(self) -> int: ...
    @property
    def first_seen_at(self) -> float: ...
    @property
    def last_seen_at(self) -> float: ...
    @property
    def name(self) -> str | None: ...


def online_since(cfg: MasterSettings) -> float:
    """Nodes last seen before this time, now, are offline."""
    return online_cutoff(time.time(), cfg.heartbeat_s, cfg.offline_after)


def node_id(session: Session, ref: str) -> str:
    """The node's full id from its id, its name, or a unique id prefix (409 when several
    match), in that order: a name made of hex digits ("db1") is that node, never the one
    whose id happens to start so."""
    found = session.scalar(select(Node.id).where(Node.id == ref)) if ref else None
    if found is None and ref:
        found = session.scalar(select(Node.id).where(Node.name == ref.lower()[:253]))
    if found is None:
        found = full_id(session, Node.id, "node", ref)
    if found is None:
        raise NotFoundError(f"no node {ref!r}")
    return found


def find_node(session: Session, ref: str) -> Node:
    node = session.get(Node, ref) or session.get(Node, node_id(session, ref))
    if node is None:  # deleted in between
        raise NotFoundError(f"no node {ref!r}")
    return node


def forget_node(session: Session, ref: str) -> None:
    """The node and its MACs go (the database drops them: ON DELETE CASCADE); its boot
    events stay, unattached."""
    session.delete(find_node(session, ref))


def _page(rows: list[T], limit: int, key: Callable[[T], str]) -> Page[T]:
    """The first `limit` of `rows` (asked for limit + 1) and the next page's cursor."""
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, key(rows[-1]) if more else None


def list_nodes(
    session: Session,
    cutoff: float,
    status: NodeStatus | None,
    mac: str | None,
    after: tuple[float, Any] | None,
    limit: int,
    tag: str | None = None,
    name: str | None = None,
) -> Page[NodeSummary]:
    query = node_query(cutoff, status, mac, after, tag, name).limit(limit + 1)
    rows = list(session.execute(query))
    rows, next_cursor = _page(rows, limit, lambda row: cursor(row.first_seen_at, row.id))
    tags = tags_of(session, (row.id for row in rows))
    return [node_summary(row, cutoff, row._mapping, tags[row.id]) for row in rows], next_cursor


def show_node(session: Session, ref: str, cutoff: float) -> NodeDetail:
    node = find_node(session, ref)
    facts = node.facts if isinstance(node.facts, dict) else {}
    system = facts.get("system")
    system = system if isinstance(system, dict) else {}
    return NodeDetail(
        **node_summary(
            node, cutoff, system, node_tags(session, node.id)
        ).model_dump(),  # checked as a NodeSummary
        macs=sorted(node_macs(session, node.id)),
        heartbeat_s=node.heartbeat_s,
        facts_hash=node.facts_hash,
        facts=facts,
        failures=list(node.failures or []),
    )


def node_timeline(
    session: Session, node: str, after: tuple[float, Any] | None, limit: int
) -> Page[TimelineEvent]:
    """The boot events of the node of id `node`, plus those of its MACs from before it
    was a node."""
    events = timeline(session, node, node_macs(session, node), after, limit + 1)
    events, next_cursor = _page(events, limit, lambda e: cursor(e.at, e.id))
    return [timeline_event(e) for e in events], next_cursor


def node_summary(
    row: NodeRow, cutoff: float, system: Mapping[Any, Any], tags: Sequence[str] = ()
) -> NodeSummary:
    """The one mapper of a node to its summary, for both views of it. `system` holds its
    vendor, product and serial: a Node's facts, or a row of the list (which has them
    taken out of the facts in SQL); `tags` its tags (master.services.node_tags)."""
    return NodeSummary(
        id=row.id,
        status=status_of(row.last_seen_at, cutoff),
        system_uuid=row.system_uuid,
        vendor=system.get("vendor"),
        product=system.get("product"),
        serial=system.get("serial"),
        boot_mac=row.boot_mac,
        last_ip=row.last_ip,
        image_id=row.image_id,
        agent_version=row.agent_version,
        boots=row.boots,
        first_seen_at=utc(row.first_seen_at),
        last_seen_at=utc(row.last_seen_at),
        name=row.name,
        tags=list(tags),
    )


def timeline_event(event: BootEvent) -> TimelineEvent:
    return TimelineEvent(
        kind=event.kind,
        at=utc(event.at),
        mac=event.mac,
        ip=event.ip,
        image_id=event.image_id,
        detail=event.detail or {},
    )


def recent_events(session: Session, node: str, limit: int) -> list[BootEvent]:
    """The node's newest `limit` boot events (and its MACs' from before it was a node),
    oldest first: enough for its last boot's timeline."""
    owned = BootEvent.node_id == node
    macs = node_macs(session, node)
    if macs:
        owned = owned | (BootEvent.node_id.is_(None) & BootEvent.mac.in_(macs))
    query = select(BootEvent).where(owned).order_by(BootEvent.at.desc(), BootEvent.id.desc())
    return list(reversed(session.scalars(query.limit(limit)).all()))
