"""Kernel options: the one rule for what may stand on a node's kernel command line.

The options end up inside an iPXE script line, so the rule is a plain allow-list: a key,
optionally `=value`, from characters neither iPXE nor a shell gives a meaning to. No
`$` (iPXE expansion), `||`, `&&`, `;`, `#`, quotes, backslashes, braces, white space or
control characters. Shared by the spec, imported metadata and the iPXE renderer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KERNEL_OPTION_RE = re.compile(r"[A-Za-z0-9_.:-]+(=[A-Za-z0-9_.,:/=@+%~!-]*)?")
MAX_OPTION_LEN = 256
MAX_OPTIONS = 64
MAX_TOTAL_LEN = 1024  # x86 takes 2048 bytes in all; livestrap's own options need the rest


def bad_kernel_options(options: Iterable[str]) -> list[str]:
    """The options that break the rule (each a string of at most MAX_OPTION_LEN)."""
    return [
        o
        for o in options
        if not isinstance(o, str) or len(o) > MAX_OPTION_LEN or not KERNEL_OPTION_RE.fullmatch(o)
    ]


def check_kernel_options(options: list[str]) -> list[str]:
    """The options unchanged; ValueError naming what is wrong (for pydantic and renderers)."""
    bad = bad_kernel_options(options)
    if bad:
        shown = ", ".join(repr(o[:60]) for o in bad[:5])
        raise ValueError(
            f"invalid kernel options {shown}: each is KEY or KEY=VALUE of letters, digits and "
            "_ . , : / = @ + % ~ ! - (no quotes, spaces, $ ; # & |)"
        )
    if len(options) > MAX_OPTIONS:
        raise ValueError(f"at most {MAX_OPTIONS} kernel options, not {len(options)}")
    total = sum(len(o) + 1 for o in options)
    if total > MAX_TOTAL_LEN:
        raise ValueError(f"kernel options take {total} bytes; at most {MAX_TOTAL_LEN}")
    return options
