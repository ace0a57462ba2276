"""One webhook attempt is bounded in total, not only per read: a receiver on 127.0.0.1 that
trickles its answer a byte at a time (each read well inside the client's timeout) is cut
off at the deadline, and a prompt receiver is not."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from livestrap.master.webhooks.dispatch import Job, send

pytestmark = pytest.mark.unit

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


def read_request(conn: socket.socket) -> bytes:
    """The request's head and its Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)  # fmt: skip
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + body


def serve(pause_s: float) -> Iterator[str]:
    """Answers every request with ANSWER, `pause_s` between its bytes."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            read_request(conn)  # all of it: closing on unread bytes would reset the client
            for byte in ANSWER:
                if stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                time.sleep(pause_s)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/hook"
    finally:
        stop.set()
        listener.close()


@pytest.fixture
def trickling() -> Iterator[str]:
    yield from serve(0.05)  # ~60 bytes: 3 s in all, each read 50 ms


@pytest.fixture
def prompt() -> Iterator[str]:
    yield from serve(0.0)


def job(url: str) -> Job:
    return Job(1, "wh-1", url, "s3cret", {"type": "node.registered"}, 0, [])


def client() -> httpx.Client:
    limits = httpx.Limits(max_keepalive_connections=0)
    return httpx.Client(timeout=httpx.Timeout(1.0), limits=limits, trust_env=False)


def test_a_trickling_receiver_is_cut_off_at_the_deadline(trickling: str) -> None:
    with client() as http:
        started = time.monotonic()
        result = send(http, job(trickling), total_s=0.6)
    took = time.monotonic() - started
    assert result.status is None and result.error is not None
    assert "timed out" in result.error and "0.6 s" in result.error
    assert took < 1.5


def test_a_prompt_receiver_is_delivered(prompt: str) -> None:
    with client() as http:
        result = send(http, job(prompt), total_s=2.0)
    assert result.ok and result.error is None
