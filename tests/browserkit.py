"""Drive Debian's chromium through Selenium for the console's browser tests.

Offline by construction: chromedriver comes from the chromium-driver package (never
Selenium Manager), background services are off, and every host name but loopback
resolves to nothing, so a page that needed a CDN would visibly break.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 10.0
FLAGS = (
    "--headless=new",
    "--no-sandbox",  # tests run as root; the sandbox refuses to start then
    "--disable-dev-shm-usage",
    "--window-size=1280,900",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1 , EXCLUDE localhost",
)
# Console messages that mean a page is broken: a CSP refusal (inline script or style,
# another origin) or an uncaught script error. Failed loads (a 401, a 403) are not.
BROKEN = ("Content Security Policy", "Uncaught", "Refused to")


def screenshot_dir() -> Path:
    """Where shots go: LIVESTRAP_SCREENSHOT_DIR (CI keeps it as an artifact), else a temp dir."""
    given = os.environ.get("LIVESTRAP_SCREENSHOT_DIR")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return Path(tempfile.mkdtemp(prefix="livestrap-screens-"))


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless chromium (one temp profile), always quit afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from helpers import skip_missing

    for needed in (CHROMIUM, CHROMEDRIVER):
        if not needed.exists():
            skip_missing(f"{needed} (apt packages chromium, chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # in case Selenium Manager ever runs
    with tempfile.TemporaryDirectory(prefix="livestrap-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            driver.implicitly_wait(0.5)
            driver.set_page_load_timeout(30)
            yield driver
        finally:
            driver.quit()


def is_gone(element: Any) -> bool:
    """True once `element` left the document. Chromedriver says so in two ways: a stale
    reference, or, while the next page is still being attached, an inspector error that the
    node "does not belong to the document" (seen in CI with Chromium 156)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as err:
        if "does not belong to the document" in str(err):
            return True
        raise
    return False


@dataclass
class Browser:
    """One chromium pointed at one master: go to pages, wait for things, take shots."""

    driver: Any
    base_url: str
    shots: Path
    seen_logs: list[dict[str, Any]] = field(default_factory=list)

    def go(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    @property
    def path(self) -> str:
        url: str = self.driver.current_url
        return url.removeprefix(self.base_url)

    def wait(self, until: Callable[[Any], Any], timeout: float = WAIT_S) -> Any:
        """`until`'s first truthy value; an element htmx swapped out meanwhile is retried."""
        from selenium.common.exceptions import StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        ignored = (StaleElementReferenceException,)
        waiter = WebDriverWait(self.driver, timeout, 0.1, ignored_exceptions=ignored)
        return waiter.until(until)

    def find(self, css: str, timeout: float = WAIT_S) -> Any:
        """The element for `css` once it is there (fails after `timeout`)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.presence_of_element_located((By.CSS_SELECTOR, css)), timeout)

    def all(self, css: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        found: list[Any] = self.driver.find_elements(By.CSS_SELECTOR, css)
        return found

    def text(self, css: str = "body") -> str:
        """The visible text of `css` (found again if htmx swaps it while we read)."""
        value: str = self.wait(lambda _: self.find(css).text + "\0")
        return value[:-1]

    def wait_text(self, css: str, wanted: str, timeout: float = WAIT_S) -> str:
        """The text of `css` once it contains `wanted`."""
        self.wait(lambda _: wanted in self.text(css), timeout)
        return self.text(css)

    def act(self, css: str, action: Callable[[Any], None]) -> None:
        """Do `action` to `css`, again if the page swapped the element out meanwhile (a
        navigation still settling, an htmx swap): chromedriver then says the node "does
        not belong to the document"."""
        from selenium.common.exceptions import WebDriverException

        def attempt(_: Any) -> bool:
            try:
                action(self.find(css))
            except WebDriverException as err:
                if "does not belong to the document" not in str(err):
                    raise
                return False
            return True

        self.wait(attempt)

    def fill(self, css: str, value: str) -> None:
        self.act(css, lambda box: (box.clear(), box.send_keys(value)))

    def set_value(self, css: str, value: str) -> None:
        """Replace a text area's content at once (send_keys types YAML's indentation badly)."""
        box = self.find(css)
        self.driver.execute_script(
            "arguments[0].value = arguments[1]; "
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
            box,
            value,
        )

    def click(self, css: str) -> None:
        self.act(css, lambda element: element.click())

    def submit_and_wait(self, css: str) -> None:
        """Click `css` and wait for the next page to load (the old <html> goes stale)."""
        old = self.find("html")
        self.click(css)
        self.wait(lambda _: is_gone(old))
        self.wait(lambda d: d.execute_script("return document.readyState") == "complete")

    def shot(self, name: str) -> Path:
        """Save a PNG of the page for a reviewer; its path."""
        path = self.shots / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def broken(self) -> list[str]:
        """Console messages since the last call that mean a CSP refusal or a script error."""
        entries: list[dict[str, Any]] = self.driver.get_log("browser")
        self.seen_logs += entries
        return [
            e["message"]
            for e in entries
            if e.get("level") == "SEVERE" and any(word in e["message"] for word in BROKEN)
        ]

    def log_in(self, token: str) -> None:
        self.go("/ui/login")
        self.fill("#token", token)
        self.submit_and_wait("button#login")

    def log_out(self) -> None:
        self.submit_and_wait("button#logout")
