"""Node tags: the rows of node_tags, read a page at a time and written whole or added to.

The nodes list filters on a tag through `node_ids_with_tag` (the tag's index), and the
bulk action selector uses the same query."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, delete, select
from sqlalchemy.orm import Session

from livestrap.master.models import NodeTag


def node_ids_with_tag(session: Session, tag: str) -> Select[Any]:
    """A SELECT of the ids of the nodes that have `tag` (for `Node.id.in_(...)`).

    `session` is not used to build it; it is in the signature the bulk selector calls."""
    del session
    return select(NodeTag.node_id).where(NodeTag.tag == tag)


def tags_of(session: Session, node_ids: Iterable[str]) -> dict[str, list[str]]:
    """node id -> its tags (sorted), for a page of nodes (one query)."""
    ids = list(node_ids)
    found: dict[str, list[str]] = {node_id: [] for node_id in ids}
    if not ids:
        return found
    rows = session.execute(
        select(NodeTag.node_id, NodeTag.tag).where(NodeTag.node_id.in_(ids)).order_by(NodeTag.tag)
    )
    for node_id, tag in rows:
        found[node_id].append(tag)
    return found


def node_tags(session: Session, node_id: str) -> list[str]:
    return tags_of(session, [node_id])[node_id]


def replace_tags(session: Session, node_id: str, tags: Iterable[str]) -> list[str]:
    """The node's tags become `tags` (checked already); the sorted result."""
    wanted = sorted(set(tags))
    session.execute(delete(NodeTag).where(NodeTag.node_id == node_id))
    session.add_all(NodeTag(node_id=node_id, tag=tag) for tag in wanted)
    session.flush()
    return wanted


def add_tags(session: Session, node_id: str, tags: Iterable[str]) -> list[str]:
    """Add the tags it lacks; the ones added, in the order given."""
    have = set(node_tags(session, node_id))
    added = [tag for tag in dict.fromkeys(tags) if tag not in have]
    session.add_all(NodeTag(node_id=node_id, tag=tag) for tag in added)
    session.flush()
    return added
