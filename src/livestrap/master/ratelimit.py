"""Per-key token buckets, in process: how the unauthenticated routes stay cheap to abuse.

Why in process: the master is one process (uvicorn, one event loop); a shared store would
be one more service to run. Several masters on one PostgreSQL each limit on their own,
so the effective limit is theirs added up.

Memory is bounded: at most `max_keys` buckets, the least recently used dropped first (a
dropped key comes back with a full bucket, which only errs on the generous side). IPv6
clients are keyed by their /64, since one host can hold a whole /64.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

MAX_KEYS = 10_000


def address_key(ip: str | None) -> str:
    """The key of a client address: itself for IPv4, its /64 for IPv6, "-" when unknown."""
    if not ip:
        return "-"
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip[:64]
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class RateLimiter:
    """`take(key)` spends one token of `key`'s bucket: 0.0 when allowed, else the seconds
    until a token is back. Buckets hold `burst` tokens and refill at `rate` per second.
    `rate` or `burst` <= 0 turns the limiter off (everything allowed)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()

    @classmethod
    def per_window(
        cls, count: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> RateLimiter:
        """A quota: `count` per `window_s`, all of it usable at once (burst = count)."""
        if count <= 0 or window_s <= 0:
            return cls(0, 0)
        return cls(count / window_s, count, clock=clock)

    @property
    def enabled(self) -> bool:
        return self.rate > 0 and self.burst > 0

    def take(self, key: str) -> float:
        if not self.enabled:
            return 0.0
        with self._lock:
            now = self.clock()
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.rate)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait_s: float) -> str:
    """Retry-After is whole seconds; never 0 for a refusal."""
    return str(max(1, math.ceil(wait_s)))
