"""Webhooks against a real master process and real receivers on 127.0.0.1: signed
deliveries, retries, a receiver that hangs, node.registered from discovery without a
slower report, node.offline once, and a deleted webhook that gets nothing more."""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from livestrap.agent.report import facts_hash
from livestrap.cli.webhooks_cmd import app as cli_app
from livestrap.master.webhooks.events import CONTENT_TYPE, SIGNATURE_HEADER, verify
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

SECRET = "test-secret-0123456789"
TIMEOUT_S = 1.0
ENV = {
    "LIVESTRAP_WEBHOOK_TIMEOUT_S": str(TIMEOUT_S),
    "LIVESTRAP_WEBHOOK_BACKOFF_S": "0.2",
    "LIVESTRAP_WEBHOOK_BACKOFF_MAX_S": "0.4",
    "LIVESTRAP_WEBHOOK_MAX_ATTEMPTS": "3",
    "LIVESTRAP_WEBHOOK_POLL_S": "0.05",
    "LIVESTRAP_WEBHOOK_SWEEP_S": "0.2",
    "LIVESTRAP_OFFLINE_AFTER": "2",
}
_serial = itertools.count(1)


class Receiver:
    """A threaded HTTP server on 127.0.0.1 that records every POST and answers each with
    the next of `answers` (a status, or "hang": no answer for `hang_s`), then 200."""

    def __init__(self, answers: list[int | str] | None = None, hang_s: float = 3.0) -> None:
        self.answers = list(answers or [])
        self.hang_s = hang_s
        self.got: list[tuple[dict[str, str], bytes]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    receiver.got.append((dict(self.headers.items()), body))
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    time.sleep(receiver.hang_s)
                    answer = 200
                self.send_response(int(answer))
                self.send_header("Content-Length", "5")
                self.end_headers()
                self.wfile.write(b"nope!" if int(answer) >= 300 else b"fine.")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, subject: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            found = [json.loads(body) for _, body in self.got]
        return [e for e in found if subject is None or e.get("subject") == subject]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("webhooks") / "data"
    with master_process(data, heartbeat_s=1, env=ENV) as m:
        yield m


@pytest.fixture(scope="module")
def admin(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as client:
        yield client


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    made: list[Receiver] = []

    def make(*args: Any, **kw: Any) -> Receiver:
        made.append(Receiver(*args, **kw))
        return made[-1]

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def hooks(admin: httpx.Client) -> Iterator[Callable[..., dict[str, Any]]]:
    """Register webhooks; all deleted after the test (so others get no deliveries)."""
    made: list[str] = []

    def add(url: str, events: list[str], secret: str | None = SECRET) -> dict[str, Any]:
        resp = admin.post("/api/v1/webhooks", json={"url": url, "events": events, "secret": secret})
        assert resp.status_code == 201, resp.text
        made.append(resp.json()["id"])
        answer: dict[str, Any] = resp.json()
        return answer

    yield add
    for webhook_id in made:
        admin.delete(f"/api/v1/webhooks/{webhook_id}")


def register(master: Master) -> tuple[str, float]:
    """A new node through /api/v1/discovery; its id and how long the report took."""
    n = next(_serial)
    mac = f"52:54:00:77:{n >> 8:02x}:{n & 255:02x}"
    facts = {"system": {"vendor": "QEMU", "serial": f"W{n}", "uuid": str(uuid.uuid4())},
             "nics": [{"name": "eth0", "mac": mac}]}  # fmt: skip
    payload = {"agent_version": "0.1.0", "image_id": "img-1", "boot_mac": facts["nics"][0]["mac"],
               "node_id": None, "facts_hash": facts_hash(facts), "facts": facts, "failures": [],
               "uptime_s": 30}  # fmt: skip
    started = time.monotonic()
    with master.discovery() as client:
        resp = client.post("/api/v1/discovery", json=payload)
    took = time.monotonic() - started
    assert resp.status_code in (200, 201), resp.text
    return resp.json()["node_id"], took


def wait_for(check: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def deliveries(admin: httpx.Client, webhook_id: str) -> list[dict[str, Any]]:
    resp = admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries")
    assert resp.status_code == 200, resp.text
    rows: list[dict[str, Any]] = resp.json()
    return rows


def test_a_delivery_is_a_signed_cloudevent(master: Master, receivers: Any, hooks: Any) -> None:
    receiver = receivers()
    hooks(receiver.url, ["node.registered"])
    node_id, _ = register(master)
    wait_for(lambda: receiver.events(node_id))
    headers, body = next((h, b) for h, b in receiver.got if json.loads(b)["subject"] == node_id)
    assert headers["Content-Type"] == CONTENT_TYPE
    assert verify(SECRET, headers[SIGNATURE_HEADER], body, time.time())
    assert not verify("another-secret-000000", headers[SIGNATURE_HEADER], body, time.time())
    event = json.loads(body)
    assert event["specversion"] == "1.0" and event["type"] == "io.livestrap.node.registered"
    assert event["source"].startswith("livestrap://") and event["time"].endswith("Z")
    assert event["data"]["node_id"] == node_id and event["data"]["vendor"] == "QEMU"
    assert headers["X-Livestrap-Event"] == "io.livestrap.node.registered"


def test_a_500_is_retried_and_each_attempt_recorded(
    master: Master, admin: httpx.Client, receivers: Any, hooks: Any
) -> None:
    receiver = receivers([500])
    hook = hooks(receiver.url, ["node.registered"])
    node_id, _ = register(master)
    wait_for(lambda: len(receiver.events(node_id)) == 2)
    rows = wait_for(lambda: [d for d in deliveries(admin, hook["id"]) if d["state"] == "delivered"])
    (row,) = rows
    assert row["attempts"] == 2 and row["last_status"] == 200 and row["last_error"] is None
    assert [a["status"] for a in row["attempt_log"]] == [500, 200]
    assert row["attempt_log"][0]["error"] == "HTTP 500 (refused): nope!"
    first, second = receiver.events(node_id)
    assert first == second  # the same event (same id) again


def test_a_receiver_that_never_answers_well_ends_failed(
    master: Master, admin: httpx.Client, receivers: Any, hooks: Any
) -> None:
    receiver = receivers([503, 503, 503])
    hook = hooks(receiver.url, ["node.registered"])
    register(master)
    (row,) = wait_for(lambda: [d for d in deliveries(admin, hook["id"]) if d["state"] == "failed"])
    assert row["attempts"] == 3 and row["last_status"] == 503 and row["next_attempt_at"] is None


def test_a_hanging_receiver_stalls_no_other_webhook_nor_discovery(
    master: Master, admin: httpx.Client, receivers: Any, hooks: Any
) -> None:
    hanging = receivers(["hang", "hang", "hang"], hang_s=3 * TIMEOUT_S)
    fast = receivers()
    slow_hook = hooks(hanging.url, ["node.registered"])
    hooks(fast.url, ["node.registered"])
    first, took_first = register(master)
    second, took_second = register(master)
    started = time.monotonic()
    wait_for(lambda: fast.events(first) and fast.events(second), timeout=TIMEOUT_S + 1.5)
    assert time.monotonic() - started < TIMEOUT_S + 1.5
    assert max(took_first, took_second) < 0.5  # the report never waits on a receiver
    timed_out = wait_for(lambda: [d for d in deliveries(admin, slow_hook["id"])
                                  if d["attempt_log"]], timeout=5)  # fmt: skip
    assert "timed out" in timed_out[0]["attempt_log"][0]["error"]


def test_node_offline_is_announced_once(
    master: Master, admin: httpx.Client, receivers: Any, hooks: Any
) -> None:
    receiver = receivers()
    hooks(receiver.url, ["node.offline"])
    node_id, _ = register(master)  # then silent: offline after 2 heartbeats of 1 s
    (event,) = wait_for(lambda: receiver.events(node_id), timeout=8)
    assert event["type"] == "io.livestrap.node.offline" and event["data"]["node_id"] == node_id
    time.sleep(1.0)  # several sweeps later
    assert len(receiver.events(node_id)) == 1
    assert admin.get(f"/api/v1/nodes/{node_id}").json()["status"] == "offline"


def test_a_deleted_webhook_gets_nothing_more(
    master: Master, admin: httpx.Client, receivers: Any
) -> None:
    receiver = receivers(["hang"], hang_s=0.5)
    made = admin.post("/api/v1/webhooks", json={"url": receiver.url, "events": ["node.registered"]})
    webhook_id = made.json()["id"]
    register(master)
    register(master)  # the second waits behind the first (one in flight per webhook)
    wait_for(lambda: receiver.got)
    assert admin.delete(f"/api/v1/webhooks/{webhook_id}").status_code == 204
    register(master)
    time.sleep(1.5)
    assert len(receiver.got) == 1
    assert admin.get(f"/api/v1/webhooks/{webhook_id}/deliveries").status_code == 404


def test_the_secret_is_shown_once_and_bad_requests_are_422(admin: httpx.Client) -> None:
    made = admin.post("/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x",
                                                "events": ["build.finished"]})  # fmt: skip
    assert made.status_code == 201 and len(made.json()["secret"]) >= 32
    listed = admin.get("/api/v1/webhooks").json()
    assert all("secret" not in hook for hook in listed)
    assert made.json()["id"] in [hook["id"] for hook in listed]
    assert admin.delete(f"/api/v1/webhooks/{made.json()['id']}").status_code == 204
    for body, field in (
        ({"url": "ftp://127.0.0.1/x", "events": ["node.offline"]}, "url"),
        ({"url": "http://127.0.0.1/ x", "events": ["node.offline"]}, "url"),
        ({"url": "http://127.0.0.1/x", "events": ["node.exploded"]}, "events"),
        ({"url": "http://127.0.0.1/x", "events": []}, "events"),
        ({"url": "http://127.0.0.1/x", "events": ["node.offline"], "secret": "short"}, "secret"),
        ({"url": "http://127.0.0.1/x", "events": ["node.offline"], "extra": 1}, "extra"),
    ):
        resp = admin.post("/api/v1/webhooks", json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert field in resp.text


def cli(master: Master, *args: str) -> str:
    argv = [*args, "--master", master.url, "--token", master.admin_token]
    result = CliRunner().invoke(cli_app, argv, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli(master: Master, tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    events = ["--event", "image.activated", "--event", "build.finished"]
    added = cli(master, "add", "http://127.0.0.1:9/cli", *events, "--secret-file", str(secret),
                "-o", "value")  # fmt: skip
    webhook_id = added.strip()
    assert webhook_id in cli(master, "list", "-q").split()
    assert json.loads(cli(master, "deliveries", webhook_id, "-o", "json")) == []
    assert "deleted" in cli(master, "rm", webhook_id)
    assert webhook_id not in cli(master, "list", "-q").split()
