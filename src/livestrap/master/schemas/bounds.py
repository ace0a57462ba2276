"""Bounds on JSON a node sends, and text that any JSON answer can carry.

Why: facts stay open to new keys, so their shape is the node's to choose. A report that
nests thousands of levels, holds a million tiny values, or carries a lone UTF-16
surrogate (valid JSON escape, invalid Unicode: no UTF-8 encoder, SQLite's included,
takes it) must be a 422, never a 500 or a row that breaks every later read.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator

MAX_DEPTH = 32  # a real report nests 6 levels (report > facts > disks > [] > {} > value)
MAX_ITEMS = 50_000  # values in one report, keys not counted; a big server sends ~3,000

_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"
NUL_MESSAGE = "holds a NUL character (PostgreSQL text cannot store one)"


def no_nul(value: str) -> str:
    """A value bound for a text column or a query: PostgreSQL refuses NUL in both, so it
    is a 422 at the edge on every engine (SQLite would take it, and a 500 on PG)."""
    if "\x00" in value:
        raise ValueError(NUL_MESSAGE)
    return value


Text = Annotated[str, AfterValidator(no_nul)]


def check_text(text: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise ValueError("a string holds a lone UTF-16 surrogate (not valid Unicode)")


def check_bounds(value: Any, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> None:
    """ValueError unless `value` nests at most `max_depth` containers deep, holds at most
    `max_items` values, and every string in it (keys too) is valid Unicode. Iterative,
    so no input can exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_items:
            raise ValueError(f"more than {max_items} values")
        if isinstance(item, str):
            check_text(item)
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str):
                        check_text(key)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)


def text_safe(value: Any) -> Any:
    """`value` with every lone surrogate replaced by U+FFFD: rows stored before reports
    were checked must still be readable (JSON answers are UTF-8)."""
    if isinstance(value, str):
        return value if value.isascii() else _SURROGATE.sub(REPLACEMENT, value)
    if isinstance(value, dict):
        return {text_safe(key): text_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [text_safe(item) for item in value]
    return value
