"""Token buckets per key (master.ratelimit) and the limit settings (master.config)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from livestrap.errors import OptionError
from livestrap.master.config import MasterSettings
from livestrap.master.config_load import load_settings
from livestrap.master.ratelimit import RateLimiter, address_key, retry_after

pytestmark = [pytest.mark.unit, pytest.mark.security]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_says_how_long_to_wait() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2, burst=3, clock=clock)
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == pytest.approx(0.5)
    assert limiter.take("b") == 0  # another key, another bucket
    clock.now += 0.5
    assert limiter.take("a") == 0  # one token came back
    assert limiter.take("a") > 0
    clock.now += 100
    assert [limiter.take("a") for _ in range(4)][:3] == [0, 0, 0]  # refilled to the burst only


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (10, 0), (0, 0)])
def test_zero_turns_a_limiter_off(rate: float, burst: float) -> None:
    limiter = RateLimiter(rate, burst)
    assert not limiter.enabled
    assert all(limiter.take("a") == 0 for _ in range(10_000))
    assert len(limiter) == 0


def test_quota_per_window() -> None:
    clock = Clock()
    quota = RateLimiter.per_window(3, 3600, clock=clock)
    assert [quota.take("ip") for _ in range(3)] == [0, 0, 0]
    assert quota.take("ip") == pytest.approx(1200, rel=0.01)  # one more in 20 minutes
    assert not RateLimiter.per_window(0, 3600).enabled


def test_memory_is_bounded_least_recently_used_first() -> None:
    limiter = RateLimiter(rate=0.001, burst=1, max_keys=100)
    for n in range(1000):
        limiter.take(f"10.0.{n // 256}.{n % 256}")
    assert len(limiter) == 100
    assert limiter.take("10.0.3.231") > 0  # recent: still limited
    assert limiter.take("10.0.0.0") == 0  # dropped long ago: a full bucket again


def test_thread_safe_exactly_the_burst_gets_through() -> None:
    limiter = RateLimiter(rate=1e-9, burst=500)
    allowed: list[int] = []
    start = threading.Barrier(8)

    def hammer() -> None:
        start.wait()
        allowed.append(sum(limiter.take("one") == 0 for _ in range(200)))

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 500


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("10.0.0.7", "10.0.0.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),  # same /64: same bucket
        ("::ffff:10.0.0.7", "10.0.0.7"),
        (None, "-"),
        ("testclient", "testclient"),
    ],
)
def test_address_key(ip: str | None, key: str) -> None:
    assert address_key(ip) == key


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert [retry_after(w) for w in (0.01, 1.0, 1.2, 59.9)] == ["1", "1", "2", "60"]


def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    defaults = MasterSettings(data_dir=tmp_path)
    assert defaults.discovery_rate == 100 and defaults.events_per_node == 500
    monkeypatch.setenv("LIVESTRAP_DISCOVERY_RATE", "0")
    monkeypatch.setenv("LIVESTRAP_EVENTS_PER_NODE", "50")
    cfg = MasterSettings(data_dir=tmp_path)
    assert (cfg.discovery_rate, cfg.events_per_node) == (0, 50)


@pytest.mark.parametrize("text", ["many", "-1", "nan", "inf"])
def test_a_bad_limit_is_refused_with_its_name(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv("LIVESTRAP_BOOT_RATE", text)
    with pytest.raises(OptionError, match=r"boot_rate: .*, from env LIVESTRAP_BOOT_RATE"):
        load_settings()
