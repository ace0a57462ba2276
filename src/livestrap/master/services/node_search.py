"""The console's node search: filters on status, vendor, product, MAC, image, serial,
name and tag (exact), plus free text, a keyset page at a time (master.queries' cursors).

Text filters match case-insensitively anywhere in the value (`dell` finds "Dell Inc.");
vendor, product and serial are plain columns (migration 0003), so a search over 10,000
nodes scans narrow rows instead of parsing every node's facts (docs/benchmarks.md). Every
value the operator types is a literal: `%` and `_` match only themselves.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from livestrap.master.events import normalize_mac
from livestrap.master.models import Node, NodeMac
from livestrap.master.queries import cursor, has_tag, node_query
from livestrap.master.schemas.nodes import NodeSummary
from livestrap.master.services.node_tags import tags_of
from livestrap.master.services.nodes import Page, node_summary

PAGE_SIZE = 50
MAX_TERM = 100
Text = str | None


class NodeFilters(BaseModel):
    """What the list form sends; an empty field is no filter."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    status: Literal["online", "offline"] | None = None
    vendor: Text = Field(default=None, max_length=MAX_TERM)
    product: Text = Field(default=None, max_length=MAX_TERM)
    mac: Text = Field(default=None, max_length=MAX_TERM)
    image: Text = Field(default=None, max_length=MAX_TERM)
    serial: Text = Field(default=None, max_length=MAX_TERM)
    name: Text = Field(default=None, max_length=MAX_TERM)
    tag: Text = Field(default=None, max_length=MAX_TERM)
    q: Text = Field(default=None, max_length=MAX_TERM)

    @field_validator("*", mode="before")
    @classmethod
    def empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    def active(self) -> dict[str, str]:
        """The filters set, as query parameters (for the next page's link)."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


def _mac_owners(term: str) -> ColumnElement[bool]:
    """Nodes owning the MAC (any separator) or, for a part of one, a MAC containing it."""
    full = normalize_mac(term)
    match = NodeMac.mac == full if full else NodeMac.mac.contains(term.lower(), autoescape=True)
    return Node.id.in_(select(NodeMac.node_id).where(match))


def _free_text(term: str) -> ColumnElement[bool]:
    return or_(
        Node.id.startswith(term.lower(), autoescape=True),
        Node.serial.icontains(term, autoescape=True),
        Node.vendor.icontains(term, autoescape=True),
        Node.product.icontains(term, autoescape=True),
        Node.name.contains(term.lower(), autoescape=True),
        _mac_owners(term),
    )


def conditions(cutoff: float, filters: NodeFilters) -> list[ColumnElement[bool]]:
    """The WHERE of a search: every filter set, all of them at once."""
    where: list[ColumnElement[bool]] = []
    if filters.status == "online":
        where.append(Node.last_seen_at >= cutoff)
    elif filters.status == "offline":
        where.append(Node.last_seen_at < cutoff)
    for column, term in (
        (Node.vendor, filters.vendor),
        (Node.product, filters.product),
        (Node.serial, filters.serial),
        (Node.image_id, filters.image),
        (Node.name, filters.name),
    ):
        if term is not None:
            where.append(column.icontains(term, autoescape=True))
    if filters.mac is not None:
        where.append(_mac_owners(filters.mac))
    if filters.tag is not None:
        where.append(has_tag(filters.tag.lower()))
    if filters.q is not None:
        where.append(_free_text(filters.q))
    return where


def search_nodes(
    session: Session,
    cutoff: float,
    filters: NodeFilters,
    after: tuple[float, Any] | None = None,
    limit: int = PAGE_SIZE,
) -> Page[NodeSummary]:
    """One page of the nodes matching `filters`, and the next page's cursor (or None)."""
    query = node_query(cutoff, None, None, after).where(*conditions(cutoff, filters))
    rows = list(session.execute(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = cursor(rows[-1].first_seen_at, rows[-1].id) if more and rows else None
    tags = tags_of(session, (row.id for row in rows))
    return [node_summary(row, cutoff, row._mapping, tags[row.id]) for row in rows], next_cursor


def count_nodes(session: Session, cutoff: float, filters: NodeFilters) -> int:
    """How many nodes match, on every page."""
    query = select(func.count(Node.id)).where(*conditions(cutoff, filters))
    return session.scalar(query) or 0
