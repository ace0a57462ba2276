"""A build's states and the one rule of how they move: only forward, finished is final."""

from __future__ import annotations

QUEUED, RUNNING, SUCCEEDED = "queued", "running", "succeeded"
FAILED, CANCELLED, INTERRUPTED = "failed", "cancelled", "interrupted"
STATES = (QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)
FINISHED = frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED})
TRANSITIONS: dict[str, frozenset[str]] = {
    QUEUED: frozenset({RUNNING, CANCELLED, INTERRUPTED}),
    RUNNING: frozenset({SUCCEEDED, FAILED, CANCELLED, INTERRUPTED}),
}


def can_move(old: str, new: str) -> bool:
    """Whether a build may go from state `old` to `new` (finished states are final)."""
    return new in TRANSITIONS.get(old, frozenset())
