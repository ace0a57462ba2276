"""A total time limit for one webhook attempt.

httpx's timeouts bound each connect, write and read on its own, so a receiver that
trickles its answer one byte per read never trips them and would hold a delivery worker
for as long as it likes. Deadline closes the attempt's socket when its total time is up;
the read then fails and the attempt is recorded as timed out. It learns the socket from
httpcore's trace of the TCP connect, so the client must open a connection per attempt
(no keep-alive), which at webhook rates costs nothing worth measuring.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any

CONNECTED = "connection.connect_tcp.complete"


class Deadline:
    """Use as a context manager around one request; pass `trace` as the request's
    `trace` extension. `fired` says whether the time ran out."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.fired = False
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()

    def trace(self, event: str, info: dict[str, Any]) -> None:
        if event != CONNECTED:
            return
        stream = info.get("return_value")
        sock = stream.get_extra_info("socket") if stream is not None else None
        if isinstance(sock, socket.socket):
            with self._lock:
                self._sock = sock
                late = self.fired
            if late:
                _shut(sock)

    def _expire(self) -> None:
        with self._lock:
            self.fired = True
            sock = self._sock
        if sock is not None:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: the attempt ended on its own
        sock.shutdown(socket.SHUT_RDWR)
