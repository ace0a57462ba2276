"""Ids given by a unique prefix, as git takes commit prefixes: one rule for nodes, builds
and images, so `livestrap nodes show 4c4c` works wherever a full id does."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from livestrap.errors import ConflictError

MAX_LISTED = 10  # candidates named in an ambiguity error; a longer list does not help


class AmbiguousIdError(ConflictError):
    """An id prefix matches several things; the message lists them so the operator can pick."""

    def __init__(self, kind: str, prefix: str, candidates: Sequence[str], more: bool) -> None:
        self.candidates = list(candidates)
        listed = ", ".join(self.candidates) + (", ..." if more else "")
        super().__init__(f"{kind} id prefix {prefix!r} is ambiguous: {listed}")


def unique_match(kind: str, prefix: str, ids: Iterable[str]) -> str | None:
    """The one id in `ids` that starts with `prefix` (an exact id wins); None when none does."""
    matches = sorted(i for i in ids if i.startswith(prefix))
    if prefix in matches:
        return prefix
    return one_of(kind, prefix, matches)


def one_of(kind: str, prefix: str, matches: Sequence[str]) -> str | None:
    """None, the only match, or AmbiguousIdError naming the first MAX_LISTED matches."""
    if not matches:
        return None
    if len(matches) > 1:
        raise AmbiguousIdError(kind, prefix, matches[:MAX_LISTED], more=len(matches) > MAX_LISTED)
    return matches[0]
