"""A real master (fake builds) for the console tests, and a logged-in client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from consoleclient import browser, log_in
from masterproc import Master, master_process


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("console") / "data", heartbeat_s=1) as m:
        yield m


@pytest.fixture
def console(master: Master) -> Iterator[tuple[httpx.Client, str]]:
    """A logged-in client and its session's CSRF token."""
    with browser(master) as client:
        yield client, log_in(client, master)
