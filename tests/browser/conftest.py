"""Browser tests: one headless chromium for the whole run, one real master per module
(fake builds), a fresh Browser per test that fails it on a CSP refusal or a script error.
Screenshots land in one dir, printed at the end of the run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browserkit import Browser, chromium, screenshot_dir
from masterproc import Master, master_process

_SHOTS: list[Path] = []


@pytest.fixture(scope="session")
def shots_dir() -> Path:
    path = screenshot_dir()
    _SHOTS.append(path)
    return path


@pytest.fixture(scope="session")
def driver() -> Iterator[Any]:
    with chromium() as drv:
        yield drv


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("browser") / "data", heartbeat_s=1) as m:
        yield m


@pytest.fixture
def browser(driver: Any, master: Master, shots_dir: Path) -> Iterator[Browser]:
    """A logged-out browser on `master`; the test fails if a page broke its console."""
    driver.delete_all_cookies()
    driver.get("about:blank")
    driver.get_log("browser")  # drop what earlier tests left
    page = Browser(driver, master.url, shots_dir)
    yield page
    broken = page.broken()
    assert not broken, f"the browser console reported: {broken}"


@pytest.fixture
def logged_in(browser: Browser, master: Master) -> Browser:
    browser.log_in(master.admin_token)
    assert browser.path == "/ui/"
    return browser


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for path in _SHOTS:
        if any(path.glob("*.png")):
            terminalreporter.write_line(f"screenshots: {path}")
