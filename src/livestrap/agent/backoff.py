"""Retry delays shared by reports and action results: full-jitter backoff, heartbeat jitter."""

from __future__ import annotations

import logging
from typing import Protocol

BACKOFF_BASE_S = 1.0
BACKOFF_FACTOR = 2.0
BACKOFF_CAP_S = 30.0
JITTER = 0.2


class Rng(Protocol):
    """The one method of random.Random the loop needs (tests pass a fixed one)."""

    def random(self) -> float: ...


def backoff_delay(attempt: int, rng: Rng) -> float:
    """Full-jitter delay before retry `attempt` (0-based): uniform in [0, min(30, 2**attempt)).

    Full jitter keeps a rack of nodes that lost the master at once from retrying in step.
    """
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * BACKOFF_FACTOR ** min(attempt, 32))
    return rng.random() * ceiling


def heartbeat_delay(heartbeat_s: float, rng: Rng) -> float:
    """heartbeat_s ±20 %, so nodes booted together spread their heartbeats out."""
    return heartbeat_s * (1 - JITTER + 2 * JITTER * rng.random())


def rate_limited_delay(retry_after_s: float, rng: Rng) -> float:
    """A 429's Retry-After plus up to 20 %, so a rack limited at once does not return in step."""
    return retry_after_s * (1.0 + JITTER * rng.random())


class Backoff:
    """Consecutive failures of one kind of request: each `retry` waits longer, `reset` ends it."""

    def __init__(self, rng: Rng, log: logging.Logger) -> None:
        self._rng = rng
        self._log = log
        self.attempt = 0

    def retry(self, reason: str) -> float:
        delay = backoff_delay(self.attempt, self._rng)
        self.attempt += 1
        self._log.warning("%s; retry %d in %.1f s", reason, self.attempt, delay)
        return delay

    def reset(self) -> None:
        self.attempt = 0
