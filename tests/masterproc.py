"""Run a real master process on 127.0.0.1 for a test, and talk to it with httpx."""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).parent
# Set to a PostgreSQL URL (make test-postgres sets one, from scripts/test-postgres.sh: a
# throwaway role that owns one database) to run the API tests on PostgreSQL: each master
# then gets a schema of its own in that database, dropped afterwards.
PG_ADMIN_URL = os.environ.get("LIVESTRAP_TEST_POSTGRES")


_PG_CREATED: set[str] = set()


def pg_schema_url(url: str, schema: str) -> str:
    """`url` with `schema` first on the search path: the master's tables and Alembic's
    version table go there."""
    from sqlalchemy import make_url

    parsed = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return parsed.render_as_string(hide_password=False)


def make_pg_schema(url: str, schema: str) -> str:
    """A fresh, empty schema in the database of `url`; its URL. Skips when PG is down."""
    import psycopg

    from helpers import skip_missing

    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            conn.execute(f'CREATE SCHEMA "{schema}"')
    except psycopg.OperationalError as err:
        skip_missing(f"a PostgreSQL server at {url.rsplit('@', 1)[-1]} ({err})")
    return pg_schema_url(url, schema)


def drop_pg_schemas(url: str, schemas: Iterable[str]) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def postgres_database(data_dir: Path) -> str:
    """The PostgreSQL schema for a data dir (made on first use, so a restarted master
    finds its data again; dropped when the test process exits). Skips when PG is down."""
    import atexit

    assert PG_ADMIN_URL
    name = "livestrap_test_" + hashlib.sha1(str(data_dir.resolve()).encode()).hexdigest()[:12]
    if name not in _PG_CREATED:
        url = make_pg_schema(PG_ADMIN_URL, name)
        if not _PG_CREATED:
            atexit.register(drop_pg_schemas, PG_ADMIN_URL, _PG_CREATED)
        _PG_CREATED.add(name)
        return url
    return pg_schema_url(PG_ADMIN_URL, name)


# The abuse limits off (master.config): benchmarks send tens of thousands of requests
# from 127.0.0.1 and measure the master, not its limiter.
NO_LIMITS = {
    name: "0"
    for name in (
        "LIVESTRAP_DISCOVERY_RATE",
        "LIVESTRAP_NEW_NODES_PER_ADDRESS",
        "LIVESTRAP_NEW_NODES_TOTAL",
        "LIVESTRAP_REFUSED_RATE",
        "LIVESTRAP_BOOT_RATE",
        "LIVESTRAP_MAC_EVENT_RATE",
    )
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Master:
    url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    database_url: str

    def database(self) -> Any:
        """The master's database, for tests that look at rows directly."""
        from livestrap.master.db import Database

        return Database(self.database_url)

    @property
    def admin_token(self) -> str:
        return (self.data_dir / "admin.token").read_text().strip()

    @property
    def discovery_token(self) -> str:
        return (self.data_dir / "discovery.token").read_text().strip()

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.admin_token}"}, timeout=30
        )

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def discovery(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token or self.discovery_token}"},
            timeout=30,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then a kill when it has not ended within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def master_process(
    data_dir: Path,
    *,
    fake_builds: bool = True,
    database_url: str | None = None,
    public_url: str | None = None,
    heartbeat_s: int = 30,
    port: int | None = None,
    cache_dir: Path | None = None,
    env: dict[str, str] | None = None,
    file_mirror_roots: tuple[Path, ...] = (),
    role: str = "all",
) -> Iterator[Master]:
    """A master on 127.0.0.1 serving `data_dir`; stopped (SIGTERM, then kill) afterwards.
    `env` adds to its environment (e.g. LIVESTRAP_DISCOVERY_RATE=0: limits off)."""
    if database_url is None and PG_ADMIN_URL:
        database_url = postgres_database(data_dir)
    port = port or free_port()
    argv = [sys.executable, str(HERE / "run_master.py"), "--data-dir", str(data_dir),
            "--port", str(port), "--heartbeat-s", str(heartbeat_s)]  # fmt: skip
    if fake_builds:
        argv.append("--fake-builds")
    argv += ["--role", role]
    # The URL goes through the environment: a command line, with a PostgreSQL URL's password,
    # is in `ps` for every local user. One the caller's environment holds is never used.
    child_env = {**os.environ, **(env or {})}
    child_env.pop("LIVESTRAP_DATABASE_URL", None)
    if database_url:
        child_env["LIVESTRAP_DATABASE_URL"] = database_url
    if public_url:
        argv += ["--public-url", public_url]
    if cache_dir:
        argv += ["--cache-dir", str(cache_dir)]
    for root in file_mirror_roots:
        argv += ["--file-mirror-root", str(root)]
    proc = subprocess.Popen(argv, env=child_env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"master exited with {proc.returncode}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("master did not start within 30 s")
            time.sleep(0.1)
        yield Master(url, data_dir, proc, database_url or f"sqlite:///{data_dir / 'livestrap.db'}")
    finally:
        stop_process(proc)


@contextmanager
def builder_process(
    data_dir: Path, database_url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`livestrap builder` (with the fake stages: tests/run_builder.py) on `data_dir` and
    its master's database; stopped (SIGTERM, then kill) afterwards."""
    argv = [sys.executable, str(HERE / "run_builder.py"), "--data-dir", str(data_dir)]
    child_env = {**os.environ, **(env or {}), "LIVESTRAP_DATABASE_URL": database_url}
    proc = subprocess.Popen(argv, env=child_env)
    try:
        yield proc
    finally:
        stop_process(proc)


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(master: Master) -> Samples:
    """The master's /metrics: {(sample name, sorted labels): value}."""
    with master.admin() as c:
        resp = c.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }
