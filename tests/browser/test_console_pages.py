"""The operator's journey through the console in a real chromium, against a real master
whose nodes registered through the agent's own Reporter and whose builds are fake.

Written against the element ids in the console contract; a missing page fails its test."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from browserkit import Browser, is_gone
from livestrap.agent.collect import collect_all
from livestrap.agent.config import AgentConfig
from livestrap.agent.report import Reporter
from masterproc import Master

pytestmark = pytest.mark.e2e

XSS_SERIAL = "<script>alert(1)</script>"
XSS_VENDOR = '"><img src=x onerror=alert(1)>'
PHASES = ("firmware", "script", "kernel", "initrd", "squashfs", "report")


GUEST = Path(__file__).parent.parent / "fixtures/agent/qemu-guest"
LLDP = "\n".join(
    ("lldp.enp0s3.via=LLDP", "lldp.enp0s3.chassis.name=leaf-3", "lldp.enp0s3.port.ifname=Eth1/7")
)


def guest_tool(argv: list[str]) -> str | None:
    """The captured guest's tool outputs, plus an LLDP neighbour on its NIC."""
    if argv[0] == "lldpcli":
        return LLDP
    saved = GUEST / "_tools" / "_".join(argv)
    return saved.read_text() if saved.is_file() else None


@functools.cache
def guest_facts() -> str:
    """What the agent's collectors find on the captured QEMU guest, as JSON."""
    return json.dumps(collect_all(AgentConfig(), root=GUEST, runner=guest_tool)["facts"])


def facts(n: int, *, vendor: str | None = None, serial: str | None = None) -> dict[str, Any]:
    """The guest's facts, made machine number `n` (its own serial, UUID and MAC)."""
    machine: dict[str, Any] = json.loads(guest_facts())
    machine["system"].update(serial=serial or f"SN{n}", uuid=f"6f1a2b3c-0000-4000-8000-{n:012x}")
    if vendor:
        machine["system"]["vendor"] = vendor
    machine["nics"][0]["mac"] = f"b8:ca:3a:00:{n:02x}:01"
    return machine


def register(master: Master, machine: dict[str, Any], *, boot: bool = True) -> str:
    """Boot `machine` as far as the iPXE script, then report like its agent would; its id."""
    mac = machine["nics"][0]["mac"]
    if boot:
        httpx.get(f"{master.url}/boot/ipxe", params={"mac": mac}, timeout=10)
    config = AgentConfig(url=master.url, token=master.discovery_token, image=None, boot_mac=mac)
    reporter = Reporter(config, lambda: {"facts": machine, "failures": []}, sleep=lambda _: None)
    reporter.step()
    assert reporter.last_ok and reporter.node_id
    return reporter.node_id


@pytest.fixture(scope="module")
def fleet(master: Master) -> Iterator[dict[str, str]]:
    """Three ordinary nodes and one whose strings are HTML; name -> node id."""
    ids = {f"n{n}": register(master, facts(n)) for n in range(1, 4)}
    ids["xss"] = register(master, facts(9, vendor=XSS_VENDOR, serial=XSS_SERIAL))
    yield ids


def no_alert(browser: Browser) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        browser.driver.switch_to.alert  # noqa: B018 (the property raises when none is open)


def find_by_mac(browser: Browser, mac: str) -> None:
    browser.go("/ui/nodes")
    browser.fill("form#node-filters input[name=mac]", mac.upper())
    browser.submit_and_wait("button#search")
    rows = browser.all("table#nodes tr.node")
    assert len(rows) == 1, browser.text("table#nodes")
    assert mac in rows[0].text
    browser.submit_and_wait("table#nodes tr.node a.node-link")


def phases(browser: Browser) -> dict[str, str]:
    bars = browser.all("svg#timeline g.phase")
    return {g.get_attribute("data-phase"): g.get_attribute("data-state") for g in bars}


def test_find_a_node_by_mac_and_open_its_timeline(
    logged_in: Browser, fleet: dict[str, str]
) -> None:
    logged_in.go("/ui/nodes")
    assert len(logged_in.all("table#nodes tr.node")) >= 4
    logged_in.shot("nodes")
    find_by_mac(logged_in, "b8:ca:3a:00:02:01")
    assert logged_in.path == f"/ui/nodes/{fleet['n2']}"
    assert fleet["n2"] in logged_in.text("h1")
    hardware = logged_in.text("#hardware")
    for shown in ("Standard PC (Q35 + ICH9, 2009)", "SN2", "enp0s3", "leaf-3", "QEMU HARDDISK"):
        assert shown in hardware
    timeline = logged_in.find("svg#timeline")
    assert timeline.is_displayed()
    states = phases(logged_in)
    assert set(states) == set(PHASES)
    # a report proves the phases before it, recorded or not (tests/console covers stalls)
    assert set(states.values()) == {"done"}
    for phase in PHASES:
        assert phase in timeline.text.lower()
    logged_in.shot("node")


def test_a_node_reporting_html_shows_it_as_text(logged_in: Browser, fleet: dict[str, str]) -> None:
    for path in (f"/ui/nodes/{fleet['xss']}", "/ui/nodes", "/ui/nodes?q=alert"):
        logged_in.go(path)
        no_alert(logged_in)
        body = logged_in.text("body")
        assert XSS_SERIAL in body  # the list has a Serial column too
        assert XSS_VENDOR in body
        images = [i.get_attribute("src") or "" for i in logged_in.all("img")]
        assert not [src for src in images if src.endswith("/x")]
        assert not logged_in.driver.execute_script("return window.alerted || null")
    logged_in.go(f"/ui/nodes/{fleet['xss']}")
    logged_in.shot("node-hostile-strings")


def test_delete_a_node_after_confirming(logged_in: Browser, master: Master) -> None:
    doomed = register(master, facts(40), boot=False)
    logged_in.go(f"/ui/nodes/{doomed}")
    form = logged_in.find("form#delete-node")
    assert form.get_attribute("data-confirm") == "Forget this node?"
    old = logged_in.find("html")
    form.find_element("css selector", "button").click()
    alert = logged_in.wait(lambda d: d.switch_to.alert)
    assert alert.text == "Forget this node?"
    alert.accept()
    logged_in.wait(lambda _: is_gone(old))
    assert logged_in.path.startswith("/ui/nodes")
    with master.admin() as admin:
        assert admin.get(f"/api/v1/nodes/{doomed}").status_code == 404


def test_dismissing_the_confirm_keeps_the_node(logged_in: Browser, master: Master) -> None:
    kept = register(master, facts(41), boot=False)
    logged_in.go(f"/ui/nodes/{kept}")
    logged_in.find("form#delete-node button").click()
    logged_in.wait(lambda d: d.switch_to.alert).dismiss()
    assert logged_in.path == f"/ui/nodes/{kept}"
    with master.admin() as admin:
        assert admin.get(f"/api/v1/nodes/{kept}").status_code == 200


BAD_SPEC = "label: browser\npackages:\n  - htop\n  - Not A Package!\n"
GOOD_SPEC = "label: browser\npackages:\n  - htop\n"


def edit_settings(browser: Browser) -> None:
    """A spec with a mistake shows the error next to the text; fixed, it saves."""
    browser.go("/ui/settings")
    browser.shot("settings")
    browser.set_value("textarea#spec", BAD_SPEC)
    browser.submit_and_wait("button#save")
    errors = [li.text for li in browser.all("ul#spec-errors li")]
    assert errors and any("packages" in e for e in errors), errors
    assert "Not A Package!" in browser.find("textarea#spec").get_attribute("value")
    assert not browser.all("p#saved")
    browser.shot("settings-error")
    browser.set_value("textarea#spec", GOOD_SPEC)
    browser.submit_and_wait("button#save")
    assert browser.find("p#saved").is_displayed()
    assert not browser.all("ul#spec-errors li")
    assert "htop" in browser.text("pre#effective") and "browser" in browser.text("pre#effective")


def follow_a_build(browser: Browser) -> str:
    """Start a build (slowed by the fake builder's slow-me package) and watch its log
    fill while it runs; the build id."""
    browser.go("/ui/builds")
    browser.shot("builds")
    browser.set_value("textarea#overrides", "packages:\n  - htop\n  - slow-me\n")
    browser.submit_and_wait("button#start")
    found = re.fullmatch(r"/ui/builds/([^/?#]+)", browser.path)
    assert found, browser.path
    seen_while_running = browser.wait(
        lambda _: (
            browser.text("pre#build-log").strip()
            and browser.text("#build-state").strip() in ("queued", "running")
            and browser.text("pre#build-log")
        )
    )
    assert "step" in seen_while_running
    assert browser.find("progress#build-progress").get_attribute("max")
    browser.shot("build-running")
    browser.wait_text("#build-state", "succeeded", timeout=60)
    log = browser.text("pre#build-log")
    assert len(log.splitlines()) > len(seen_while_running.splitlines())
    assert "rootfs" in log
    browser.shot("build")
    return found[1]


def activate(browser: Browser, master: Master, build_id: str) -> None:
    with master.admin() as admin:
        image_id = admin.get(f"/api/v1/builds/{build_id}").json()["image_id"]
    browser.go("/ui/images")
    browser.shot("images")
    row = [r for r in browser.all("table#images tr.image") if image_id in r.text]
    assert row and not row[0].find_elements("css selector", ".badge.active")
    browser.go(f"/ui/images/{image_id}")
    assert "htop" in browser.text("table#packages")
    browser.shot("image")
    browser.submit_and_wait("form.activate button")
    browser.go("/ui/images")
    row = [r for r in browser.all("table#images tr.image") if image_id in r.text]
    assert row[0].find_elements("css selector", ".badge.active")
    browser.go("/ui/")
    assert image_id in browser.text(".cards")


def test_the_operator_journey(browser: Browser, master: Master, fleet: dict[str, str]) -> None:
    """Log in, find a node by MAC and open its timeline, fix the settings, build and
    follow the log live, activate the image, log out: what the issue asks of a user."""
    browser.log_in(master.admin_token)
    assert browser.text("h1") == "Overview"
    find_by_mac(browser, "b8:ca:3a:00:01:01")
    assert set(phases(browser)) == set(PHASES)
    edit_settings(browser)
    build_id = follow_a_build(browser)
    activate(browser, master, build_id)
    browser.log_out()
    browser.go("/ui/settings")
    assert browser.path.startswith("/ui/login")
