"""Action results waiting for the master: POST {url}/api/v1/discovery/actions/{id}/result.

Kept in memory, in order, at most MAX_PENDING (the oldest is dropped, with a log line,
past that). No answer or a 5xx: retried with the reports' full-jitter backoff; 429:
after its Retry-After. 200: done. 404 (unknown action) and 409 (no longer delivered:
already finished or lost) cannot get better by retrying: logged and dropped, as is any
other 4xx.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from .backoff import Backoff, Rng, rate_limited_delay
from .transport import Request, Transport, TransportError, snippet

log = logging.getLogger("livestrap.agent")

RESULT_PATH = "/api/v1/discovery/actions/{id}/result"
MAX_PENDING = 32


class ResultOutbox:
    """Results in the order their actions ran; `flush()` sends what it can."""

    def __init__(
        self,
        base_url: str,
        transport: Transport,
        headers: Callable[[], dict[str, str]],
        rng: Rng,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._transport = transport
        self._headers = headers
        self._rng = rng
        self._pending: deque[tuple[str, bytes]] = deque()
        self._backoff = Backoff(rng, log)

    def __len__(self) -> int:
        return len(self._pending)

    def add(self, action_id: str, body: dict[str, Any]) -> None:
        if len(self._pending) >= MAX_PENDING:
            dropped, _ = self._pending.popleft()
            log.error("too many unsent action results; dropped the one of action %s", dropped)
        self._pending.append((action_id, json.dumps(body).encode()))

    def flush(self) -> float | None:
        """Send pending results in order; None when none is left, else seconds to wait."""
        while self._pending:
            action_id, data = self._pending[0]
            url = self._base + RESULT_PATH.format(id=action_id)
            try:
                answer = self._transport(Request(url, data, self._headers()))
            except TransportError as exc:
                return self._backoff.retry(
                    f"result of action {action_id}: master unreachable ({exc})"
                )
            if answer.status == 429 and answer.retry_after_s is not None:
                return rate_limited_delay(answer.retry_after_s, self._rng)
            if answer.status >= 500 or answer.status == 429:
                return self._backoff.retry(
                    f"result of action {action_id}: HTTP {answer.status}: {snippet(answer.body)}"
                )
            self._pending.popleft()
            self._backoff.reset()
            if answer.status == 200:
                log.info("result of action %s accepted", action_id)
            elif answer.status in (404, 409):
                log.warning("master will not take the result of action %s (HTTP %d: %s); "
                            "dropped", action_id, answer.status, snippet(answer.body))  # fmt: skip
            else:
                log.error("master refused the result of action %s (HTTP %d: %s); dropped",
                          action_id, answer.status, snippet(answer.body))  # fmt: skip
        return None
