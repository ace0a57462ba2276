"""Reporting loop: backoff bounds, the protocol on a fake transport, and a real local server."""

from __future__ import annotations

import hashlib
import http.server
import json
import logging
import random
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from livestrap.agent import AGENT_VERSION
from livestrap.agent.backoff import BACKOFF_CAP_S, backoff_delay, heartbeat_delay
from livestrap.agent.config import AgentConfig, ConfigError
from livestrap.agent.report import REJECTED_RETRY_S, Reporter, facts_hash, parse_answer
from livestrap.agent.transport import (
    Request,
    Response,
    TransportError,
    parse_retry_after,
    urllib_transport,
)

pytestmark = pytest.mark.unit

CONFIG = AgentConfig(
    url="http://master.test:8080/", token="tok", image="img-7", boot_mac="aa:bb:cc:dd:ee:ff"
)
OK = json.dumps({"node_id": "node-1", "heartbeat_s": 30, "facts_required": False}).encode()


class FixedRng:
    """random() always returns `value`: pins delays to the bounds under test."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


class Collector:
    """Fake collect_all; `facts` can be changed between calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.facts: dict[str, Any] = {"cpu": {"threads": 4}}

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"agent_version": AGENT_VERSION, "facts": dict(self.facts), "failures": []}


class FakeMaster:
    """Transport that records requests and plays scripted answers (or raises)."""

    def __init__(self, script: list[Response | Exception]) -> None:
        self.script = script
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        answer = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.body) for r in self.requests]


def reporter(
    master: FakeMaster, collect: Callable[[], dict[str, Any]] | None = None, rng: float = 0.5
) -> Reporter:
    return Reporter(CONFIG, collect or Collector(), master, clock=lambda: 1234.9, rng=FixedRng(rng))


# --- pure pieces ---------------------------------------------------------------


def test_backoff_schedule_bounds() -> None:
    almost_one = FixedRng(0.999999)
    ceilings = [backoff_delay(attempt, almost_one) for attempt in range(8)]
    assert [round(c) for c in ceilings] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff_delay(5, FixedRng(0.0)) == 0.0
    assert backoff_delay(10_000, almost_one) <= BACKOFF_CAP_S  # no overflow
    rng = random.Random(7)
    for attempt in range(20):
        for _ in range(50):
            assert 0.0 <= backoff_delay(attempt, rng) < min(30.0, 2.0**attempt)


def test_heartbeat_jitter_bounds() -> None:
    assert heartbeat_delay(60, FixedRng(0.0)) == pytest.approx(48)
    assert heartbeat_delay(60, FixedRng(1.0)) == pytest.approx(72)
    rng = random.Random(3)
    assert all(48 <= heartbeat_delay(60, rng) <= 72 for _ in range(200))


def test_facts_hash_is_canonical() -> None:
    a = {"b": [1, 2], "a": {"y": None, "x": "é"}}
    b = {"a": {"x": "é", "y": None}, "b": [1, 2]}
    assert facts_hash(a) == facts_hash(b)
    expected = hashlib.sha256(b'{"a":{"x":"\\u00e9","y":null},"b":[1,2]}').hexdigest()
    assert facts_hash(a) == expected


def test_parse_answer() -> None:
    answer = parse_answer(b'{"node_id": "n", "heartbeat_s": 0, "facts_required": true}')
    assert (answer.node_id, answer.heartbeat_s, answer.facts_required) == ("n", 1, True)
    assert parse_answer(b'{"node_id": "n"}').heartbeat_s is None
    for bad in (b"<html>", b"[]", b'{"node_id": 5}', b'{"node_id": "n", "heartbeat_s": "10"}'):
        with pytest.raises(ValueError):
            parse_answer(bad)


def test_reporter_needs_a_url() -> None:
    with pytest.raises(ConfigError, match=r"livestrap\.url="):
        Reporter(AgentConfig(), Collector())


# --- protocol on a fake transport ------------------------------------------------


def test_first_report_then_heartbeat() -> None:
    master = FakeMaster([Response(201, OK), Response(200, OK)])
    agent = reporter(master)
    assert agent.step() == pytest.approx(30)  # master's heartbeat_s, rng 0.5 = no jitter
    assert agent.last_ok and agent.node_id == "node-1"
    agent.step()
    first, second = master.bodies()
    request = master.requests[0]
    assert request.url == "http://master.test:8080/api/v1/discovery"
    assert request.method == "POST"
    assert request.headers["Authorization"] == "Bearer tok"
    assert request.headers["Content-Type"] == "application/json"
    assert first == {
        "agent_version": AGENT_VERSION,
        "image_id": "img-7",
        "boot_mac": "aa:bb:cc:dd:ee:ff",
        "node_id": None,
        "facts_hash": facts_hash({"cpu": {"threads": 4}}),
        "facts": {"cpu": {"threads": 4}},
        "failures": [],
        "uptime_s": 1234,
    }
    assert second["facts"] is None
    assert second["node_id"] == "node-1"
    assert second["facts_hash"] == first["facts_hash"]


def test_facts_resent_when_master_asks() -> None:
    asks = json.dumps({"node_id": "node-1", "heartbeat_s": 30, "facts_required": True}).encode()
    master = FakeMaster(
        [Response(200, OK), Response(200, asks), Response(200, OK), Response(200, OK)]
    )
    agent = reporter(master)
    for _ in range(4):
        agent.step()
    assert [b["facts"] is not None for b in master.bodies()] == [True, False, True, False]


def test_recollects_every_tenth_heartbeat_and_sends_only_changes() -> None:
    collect = Collector()
    master = FakeMaster([Response(200, OK)])
    agent = reporter(master, collect)
    for _ in range(11):  # first report + 10 heartbeats
        agent.step()
    assert collect.calls == 2  # at start and at the 10th heartbeat
    assert [b["facts"] is not None for b in master.bodies()] == [True] + [False] * 10
    collect.facts = {"cpu": {"threads": 8}}  # a DIMM... a CPU appeared
    for _ in range(10):
        agent.step()
    assert collect.calls == 3
    sent = [b["facts"] for b in master.bodies()[11:]]
    assert sent[-1] == {"cpu": {"threads": 8}}
    assert sent[:-1] == [None] * 9


def test_backoff_on_unreachable_and_5xx_resets_after_success() -> None:
    master = FakeMaster(
        [
            TransportError("connection refused"),
            Response(503, b"busy"),
            Response(502),
            Response(200, OK),
            Response(500, b"oops"),
            Response(200, OK),
        ]
    )
    agent = reporter(master, rng=0.999999)
    delays = [agent.step() for _ in range(5)]
    assert [round(d) for d in delays] == [1, 2, 4, 36, 1]  # 36 = 30 s + 20 % jitter
    assert all(b["facts"] is not None for b in master.bodies()[:4])  # unacked facts retried
    assert master.bodies()[4]["facts"] is None


def test_rejections_retry_every_minute(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="livestrap.agent")
    master = FakeMaster(
        [Response(403, b"bad token"), Response(404, b"no such route"), Response(200, b"<html>")]
    )
    agent = reporter(master)
    assert [agent.step() for _ in range(3)] == [60.0, 60.0, 60.0]
    assert not agent.last_ok and agent.node_id is None
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert "discovery token refused" in errors[0] and "HTTP 403" in errors[0]
    assert "HTTP 404" in errors[1] and "no such route" in errors[1]
    assert "unusable answer" in errors[2]


def test_no_token_means_no_authorization_header() -> None:
    master = FakeMaster([Response(200, OK)])
    Reporter(AgentConfig(url="http://m"), Collector(), master).step()
    assert "Authorization" not in master.requests[0].headers


def test_run_survives_a_crashing_step(caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def flaky() -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")
        return {"facts": {}, "failures": []}

    slept: list[float] = []
    master = FakeMaster([Response(200, OK)])
    agent = Reporter(CONFIG, flaky, master, sleep=slept.append, rng=FixedRng(0.5))
    agent.run(max_steps=2)
    assert slept == [60.0, pytest.approx(30)]
    assert "report failed unexpectedly" in caplog.text


# --- the real thing: urllib against a local HTTP server ------------------------------


class MasterHandler(http.server.BaseHTTPRequestHandler):
    """Plays the scripted (status, body) answers in order and records each request."""

    server: ScriptedServer

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), json.loads(body)))
        status, payload = self.server.script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


class ScriptedServer(http.server.ThreadingHTTPServer):
    def __init__(self, port: int, script: list[tuple[int, bytes]]) -> None:
        super().__init__(("127.0.0.1", port), MasterHandler)
        self.script = script
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(server: ScriptedServer) -> Iterator[ScriptedServer]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_loop_against_a_real_local_master(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="livestrap.agent")
    port = free_port()  # nothing listens yet: the first report is refused
    ok = json.dumps({"node_id": "node-42", "heartbeat_s": 10, "facts_required": False}).encode()
    script = [
        (503, b'{"error": "starting"}'),
        (401, b'{"error": "bad token"}'),
        (200, ok),
        (200, ok),
    ]
    slept: list[float] = []
    started: list[ScriptedServer] = []

    def sleep(delay: float) -> None:
        slept.append(delay)
        if not started:  # the master comes up while the agent waits
            started.append(ScriptedServer(port, script))
            threading.Thread(target=started[0].serve_forever, args=(0.05,), daemon=True).start()

    config = AgentConfig(url=f"http://127.0.0.1:{port}", token="t0k", image="img", heartbeat_s=60)
    agent = Reporter(config, Collector(), urllib_transport, sleep=sleep, rng=random.Random(5))
    try:
        agent.run(max_steps=5)
    finally:
        if started:
            started[0].shutdown()
            started[0].server_close()
    refused, unavailable, rejected, registered, heartbeat = slept
    assert 0 <= refused < 1
    assert 0 <= unavailable < 2
    assert rejected == 60.0
    assert 8 <= registered <= 12 and 8 <= heartbeat <= 12  # the master's 10 s ± 20 %
    assert agent.node_id == "node-42"
    received = started[0].received
    assert [path for path, _, _ in received] == ["/api/v1/discovery"] * 4
    assert all(headers["Authorization"] == "Bearer t0k" for _, headers, _ in received)
    bodies = [body for _, _, body in received]
    assert [b["facts"] is not None for b in bodies] == [True, True, True, False]
    assert bodies[3]["node_id"] == "node-42"
    assert any(
        "unreachable" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING
    )
    refusals = [r for r in caplog.records if "discovery token refused" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].levelno == logging.ERROR
    assert "registered with" in caplog.text and "node-42" in caplog.text


def test_urllib_transport_statuses_and_errors() -> None:
    port = free_port()
    request = Request(f"http://127.0.0.1:{port}/api/v1/discovery", b"{}", timeout_s=2)
    with pytest.raises(TransportError):
        urllib_transport(request)
    with serving(ScriptedServer(port, [(201, OK), (403, b"nope")])) as server:
        assert urllib_transport(request) == Response(201, OK)
        assert urllib_transport(request) == Response(403, b"nope")
        assert len(server.received) == 2


def test_rate_limited_waits_the_masters_retry_after_with_jitter() -> None:
    master = FakeMaster([Response(429, b"{}", retry_after_s=40.0), Response(429, b"{}")])
    agent = reporter(master, rng=0.5)
    assert agent.step() == pytest.approx(44.0)  # 40 s + half of the 20 % jitter
    assert agent.step() == REJECTED_RETRY_S  # no Retry-After: like any other 4xx


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("7", 7.0), (" 12 ", 12.0), ("999999", 3600.0), ("-1", None), ("1e3", None),
     ("Wed, 21 Oct 2026 07:28:00 GMT", None), ("9" * 5000, None), (None, None)],
)  # fmt: skip
def test_retry_after_is_bounded_delta_seconds(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header) == seconds
