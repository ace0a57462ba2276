"""STUB (helper A's worktree): the nodes carrying a tag. Helper C writes the real module;
the integrator keeps C's. Returns a SELECT of node ids, for `Node.id.in_(...)`."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, false, select
from sqlalchemy.orm import Session

from livestrap.master.models import Node


def node_ids_with_tag(session: Session, tag: str) -> Select[Any]:
    """No node has tags until helper C's tags exist: a select of no ids."""
    return select(Node.id).where(false())
