"""Rows by full id or unique id prefix, without scanning a table: 10,000 nodes stay fast."""

from __future__ import annotations

import string
from typing import Any

from sqlalchemy import ColumnElement, Select, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from livestrap.ids import MAX_LISTED, one_of


def _prefix_range(column: InstrumentedAttribute[str], prefix: str) -> list[ColumnElement[bool]]:
    """`column` starts with `prefix`, written so the primary-key index serves it.

    LIKE 'p%' alone uses no index on SQLite (LIKE ignores case there) nor on PostgreSQL
    outside the C collation; a range `p <= id < p'` (p' = p with its last character
    incremented) does on both. The LIKE (wildcards escaped) keeps the answer exact.
    The range is taken on the prefix without its trailing punctuation: a collation that
    ignores punctuation at first (glibc's en_US.UTF-8 may) would put the upper bound of
    `p-`, `p.`, below every id that starts with `p-`.
    """
    like = column.startswith(prefix, autoescape=True)
    stem = prefix.rstrip(string.punctuation)
    if not stem:
        return [like]
    bounds = [column >= stem]
    after = _next_alnum(stem[-1])
    if after is not None:  # an upper bound that is itself no punctuation ('9' -> 'a')
        bounds.append(column < stem[:-1] + after)
    return [*bounds, like]


def _next_alnum(char: str) -> str | None:
    """The smallest letter or digit above `char` in code-point order (None for 'z', 'Z'
    and beyond: the lower bound and the LIKE then do it alone)."""
    for code in range(ord(char) + 1, ord("z") + 1):
        if chr(code).isalnum():
            return chr(code)
    return None


def full_id(
    session: Session, column: InstrumentedAttribute[str], kind: str, ref: str
) -> str | None:
    """`ref` itself when it is an id, else the one id it is a prefix of; None when there is
    none. Several raise AmbiguousIdError (409) naming them."""
    if not ref:
        return None
    if session.scalar(select(column).where(column == ref)) is not None:
        return ref
    return one_of(kind, ref, list(session.scalars(prefix_query(column, ref))))


def prefix_query(column: InstrumentedAttribute[str], prefix: str) -> Select[Any]:
    """The first MAX_LISTED + 1 ids starting with `prefix`, in order."""
    return (
        select(column).where(*_prefix_range(column, prefix)).order_by(column).limit(MAX_LISTED + 1)
    )
