"""A lean HTTP/1.1 load generator: N clients download one URL at once, from one thread.

Why not httpx or aiohttp: on 2 cores the client shares the CPU with the server under
test, so it must cost as little as possible. One epoll loop over non-blocking sockets;
the body is received with MSG_TRUNC (tcp(7): the kernel discards the bytes and returns
their count, no copy into user space) unless `copy` asks for a real `recv_into` of a
reused buffer. Each download is checked by status and byte count; the loop is bounded
by a deadline, after which unfinished downloads are cut and reported as such.
"""

from __future__ import annotations

import errno
import math
import multiprocessing
import resource
import select
import socket
import time
from dataclasses import dataclass, field

BUF = 1 << 20  # bytes per recv: large, so few system calls per MB


@dataclass
class Download:
    """One client's download and what became of it."""

    sock: socket.socket
    status: int | None = None
    length: int | None = None  # Content-Length
    body: int = 0  # body bytes received
    head: bytearray = field(default_factory=bytearray)
    seconds: float | None = None  # from the common start until the last byte
    first_byte: float | None = None  # from the common start until the response head
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.status == 200 and self.body == self.length


@dataclass(frozen=True)
class LoadResult:
    clients: int
    wall_s: float
    ok: int
    bytes: int  # body bytes received by all clients
    seconds: list[float]  # per completed download
    first_byte: list[float]  # per completed download: when its response head came
    errors: list[str]
    client_cpu_s: float  # CPU time the generator itself used


def _cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def _on_head(dl: Download, data: bytes) -> int:
    """Parse the status line and Content-Length once the head is complete; returns the
    number of body bytes already received with it (-1: head not complete yet)."""
    dl.head += data
    end = dl.head.find(b"\r\n\r\n")
    if end < 0:
        return -1
    lines = bytes(dl.head[:end]).decode("latin-1").split("\r\n")
    dl.status = int(lines[0].split()[1])
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            dl.length = int(value)
    if dl.length is None:
        dl.error = "no Content-Length"
    return len(dl.head) - end - 4


def fetch_all(
    host: str, port: int, path: str, clients: int, time_limit_s: float, copy: bool = False
) -> LoadResult:
    """Start `clients` downloads of http://host:port/path at once; wait until all are done
    or `time_limit_s` has passed."""
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode()
    buf = bytearray(BUF)
    flags = 0 if copy else socket.MSG_TRUNC
    ep = select.epoll()
    live: dict[int, Download] = {}
    cpu0, start = _cpu(), time.monotonic()
    for _ in range(clients):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex((host, port))
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, f"connect to {host}:{port}")
        live[s.fileno()] = Download(s)
        ep.register(s.fileno(), select.EPOLLOUT)
    done: list[Download] = []
    deadline = start + time_limit_s
    try:
        while live and time.monotonic() < deadline:
            for fd, events in ep.poll(min(1.0, max(0.0, deadline - time.monotonic()))):
                dl = live[fd]
                if events & select.EPOLLOUT:
                    _send_request(dl, request, ep)
                elif events & (select.EPOLLIN | select.EPOLLHUP | select.EPOLLERR):
                    _receive(dl, buf, flags, start)
                if dl.seconds is not None or dl.error is not None:
                    ep.unregister(fd)
                    dl.sock.close()
                    done.append(live.pop(fd))
    finally:
        for dl in live.values():
            dl.error = dl.error or f"cut at the time limit after {dl.body} body bytes"
            dl.sock.close()
            done.append(dl)
        ep.close()
    wall = time.monotonic() - start
    return LoadResult(
        clients=clients,
        wall_s=wall,
        ok=sum(d.ok for d in done),
        bytes=sum(d.body for d in done),
        seconds=sorted(d.seconds for d in done if d.ok and d.seconds is not None),
        first_byte=sorted(d.first_byte for d in done if d.ok and d.first_byte is not None),
        errors=[_failure(d) for d in done if not d.ok],
        client_cpu_s=_cpu() - cpu0,
    )


def _failure(dl: Download) -> str:
    return dl.error or f"HTTP {dl.status}, {dl.body} of {dl.length} bytes"


def _send_request(dl: Download, request: bytes, ep: select.epoll) -> None:
    err = dl.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        dl.error = f"connect: {errno.errorcode.get(err, err)}"
        return
    dl.sock.sendall(request)  # a few dozen bytes: always fits the empty send buffer
    ep.modify(dl.sock.fileno(), select.EPOLLIN)


def _receive(dl: Download, buf: bytearray, flags: int, start: float) -> None:
    try:
        if dl.status is None:
            got = dl.sock.recv_into(buf, 65536)
            body = _on_head(dl, bytes(buf[:got])) if got else -1
            if body >= 0:
                dl.first_byte = time.monotonic() - start
            if body > 0:
                dl.body += body
        else:
            want = min(BUF, (dl.length or 0) - dl.body) or BUF
            got = dl.sock.recv_into(buf, want, flags)
            dl.body += got
    except BlockingIOError:
        return
    except OSError as err:
        dl.error = f"receive: {err}"
        return
    if dl.length is not None and dl.body >= dl.length:
        dl.seconds = time.monotonic() - start
    elif got == 0:
        dl.error = dl.error or "connection closed early"


def fetch_split(
    procs: int, host: str, port: int, path: str, clients: int, time_limit_s: float
) -> LoadResult:
    """The same load from `procs` processes (forked), to check that one generator process
    is not what limits the figures."""
    if procs <= 1:
        return fetch_all(host, port, path, clients, time_limit_s)
    shares = [clients // procs + (i < clients % procs) for i in range(procs)]
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(procs) as pool:
        parts = pool.starmap(fetch_all, [(host, port, path, n, time_limit_s) for n in shares])
    return LoadResult(
        clients=clients,
        wall_s=max(p.wall_s for p in parts),
        ok=sum(p.ok for p in parts),
        bytes=sum(p.bytes for p in parts),
        seconds=sorted(s for p in parts for s in p.seconds),
        first_byte=sorted(s for p in parts for s in p.first_byte),
        errors=[e for p in parts for e in p.errors],
        client_cpu_s=sum(p.client_cpu_s for p in parts),
    )


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of sorted values (None when there are none)."""
    if not values:
        return None
    rank = max(1, min(len(values), math.ceil(q / 100 * len(values))))
    return values[rank - 1]
