"""What operators read: the node list and a node's timeline, a page at a time.

Pages are keyset pages: `after` is the cursor of the last row of the previous page
(`<sort value>,<id>`), so a page neither skips nor repeats rows when nodes register or
old events are pruned while a client walks the pages (offsets would shift).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from livestrap.master.models import BootEvent, Node, NodeMac, NodeTag

MAX_PAGE = 1000
CURSOR_MAX = 100
MAX_ROW_ID = (1 << 31) - 1  # event ids are INTEGER: 32-bit on PostgreSQL, larger ones overflow
MAX_SORT_VALUE = float(1 << 53)  # sort values are epoch seconds; past this a float is inexact


class BadCursor(ValueError):
    """`after` is not a cursor this master handed out."""


def cursor(value: float, row_id: object) -> str:
    return f"{value!r},{row_id}"


def parse_cursor(text: str, int_id: bool = False) -> tuple[float, str | int]:
    head, sep, tail = text.partition(",")
    try:
        if not sep or not tail or len(text) > CURSOR_MAX:
            raise ValueError
        value = float(head)
        row_id: str | int = int(tail) if int_id else tail
    except ValueError:
        raise BadCursor(f"not a cursor from this master: {text[:CURSOR_MAX]!r}") from None
    if not math.isfinite(value) or abs(value) > MAX_SORT_VALUE:
        raise BadCursor(f"not a cursor from this master: {text!r}")
    if isinstance(row_id, int) and not 0 <= row_id <= MAX_ROW_ID:
        raise BadCursor(f"not a cursor from this master: {text!r}")
    return value, row_id


def _after(
    sort: InstrumentedAttribute[float], key: InstrumentedAttribute[Any], at: tuple[float, Any]
) -> ColumnElement[bool]:
    return or_(sort > at[0], and_(sort == at[0], key > at[1]))


LIST_COLUMNS: tuple[Any, ...] = (
    Node.id,
    Node.system_uuid,
    Node.vendor,
    Node.product,
    Node.serial,
    Node.boot_mac,
    Node.last_ip,
    Node.image_id,
    Node.agent_version,
    Node.boots,
    Node.first_seen_at,
    Node.last_seen_at,
    Node.name,
)


def has_tag(tag: str) -> ColumnElement[bool]:
    """The node has `tag`: one probe of node_tags' primary key per node looked at."""
    return exists().where(NodeTag.node_id == Node.id, NodeTag.tag == tag)


def node_query(
    cutoff: float,
    status: str | None = None,
    mac: str | None = None,
    after: tuple[float, Any] | None = None,
    tag: str | None = None,
    name: str | None = None,
) -> Select[Any]:
    """Rows for the node list; vendor/product/serial from their columns (facts.system's,
    copied on each report: migration 0003), not parsed out of every node's facts."""
    query = select(*LIST_COLUMNS).order_by(Node.first_seen_at, Node.id)
    if status == "online":
        query = query.where(Node.last_seen_at >= cutoff)
    elif status == "offline":
        query = query.where(Node.last_seen_at < cutoff)
    if mac is not None:
        query = query.where(Node.id.in_(select(NodeMac.node_id).where(NodeMac.mac == mac)))
    if tag is not None:
        query = query.where(has_tag(tag))
    if name is not None:
        query = query.where(Node.name == name.lower())
    if after is not None:
        query = query.where(_after(Node.first_seen_at, Node.id, after))
    return query


def node_macs(session: Session, node_id: str) -> list[str]:
    return list(session.scalars(select(NodeMac.mac).where(NodeMac.node_id == node_id)))


def timeline(
    session: Session,
    node_id: str,
    macs: Sequence[str],
    after: tuple[float, Any] | None = None,
    limit: int | None = None,
) -> list[BootEvent]:
    """The node's boot events, plus those of its MACs from before it was a node."""
    owned = BootEvent.node_id == node_id
    if macs:
        owned = owned | (BootEvent.node_id.is_(None) & BootEvent.mac.in_(macs))
    query = select(BootEvent).where(owned).order_by(BootEvent.at, BootEvent.id)
    if after is not None:
        query = query.where(_after(BootEvent.at, BootEvent.id, after))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))
