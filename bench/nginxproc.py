"""Our own nginx process for the serving benchmark: Debian's binary, a config of ours in
a temporary folder (`-p`/`-c`), listening on 127.0.0.1 only, stopped by its PID.

The packaged service is never started (tools.ensure_debs blocks it); this nginx runs in
the foreground (`daemon off`) as a child of the benchmark, so it cannot outlive it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tools import cpu_seconds


@dataclass
class Nginx:
    port: int
    proc: subprocess.Popen[bytes]
    error_log: Path

    def pids(self) -> list[int]:
        """The master process and its workers."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [self.proc.pid, *(int(p) for p in children.read_text().split())]

    def cpu_seconds(self) -> float:
        """CPU time of the master and the workers (alive for the whole run)."""
        return sum(cpu_seconds(pid) for pid in self.pids())


def main_config(prefix: Path, http_body: str) -> str:
    """A whole nginx.conf around `http_body`: every path inside `prefix`, 2 workers (one
    per core here), logs off (the master writes none either)."""
    temp = "\n".join(f"    {k}_temp_path {prefix}/{k}_temp;"
                     for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))  # fmt: skip
    return (
        "daemon off;\nworker_processes 2;\n"
        f"pid {prefix}/nginx.pid;\nerror_log {prefix}/error.log warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n    access_log off;\n    include /etc/nginx/mime.types;\n"
        f"{temp}\n{http_body}}}\n"
    )


def static_site(port: int, images_dir: Path) -> str:
    """The plain peer: the same files under the same URL path, sendfile as Debian sets it."""
    return (
        "    sendfile on;\n    tcp_nopush on;\n"
        f"    server {{\n        listen 127.0.0.1:{port};\n"
        f"        location /boot/images/ {{ alias {images_dir}/; }}\n    }}\n"
    )


@contextmanager
def nginx_process(prefix: Path, http_body: str, port: int) -> Iterator[Nginx]:
    """Start nginx with `http_body` (which must listen on 127.0.0.1:port); wait until the
    port answers; stop it (SIGQUIT, then SIGKILL) by its PID afterwards."""
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(main_config(prefix, http_body))
    proc = subprocess.Popen(["nginx", "-p", str(prefix), "-c", str(conf)])
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                log = (prefix / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"nginx exited with {proc.returncode}: {log}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("nginx did not listen within 10 s") from None
                time.sleep(0.05)
        yield Nginx(port, proc, prefix / "error.log")
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGQUIT)  # graceful: workers finish, then exit
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
