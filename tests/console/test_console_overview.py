"""The overview against a real master of its own: the node counts (online, offline), the
reports refused in the last day, the active image and the last boot events, as shown."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import httpx
import pytest

from fleet import machine_facts, report_body
from masterproc import Master

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from store_helpers import image_members, write_tar

pytestmark = pytest.mark.integration

COUNT = re.compile(r'<li id="count-(\w+)"><a href="([^"]+)"><strong>(\d+)</strong>')
ROW = re.compile(r"<tr><td>[^<]+</td><td>([\w-]+)</td><td>([^<]+)</td>")


def report(master: Master, n: int, token: str | None = None) -> httpx.Response:
    facts = machine_facts(n)
    with master.discovery(token) as client:
        return client.post("/api/v1/discovery", json=report_body(facts, facts["nics"][0]["mac"]))


def counts(client: httpx.Client) -> dict[str, tuple[str, int]]:
    page = client.get("/ui/")
    assert page.status_code == 200
    return {name: (href, int(n)) for name, href, n in COUNT.findall(page.text)}


def test_the_overview_shows_the_fleet(
    master: Master, console: tuple[httpx.Client, str], tmp_path: Path
) -> None:
    client, _ = console
    assert counts(client) == {"online": ("/ui/nodes?status=online", 0),
                              "offline": ("/ui/nodes?status=offline", 0),
                              "refused": ("#events", 0)}  # fmt: skip
    assert "No image is active" in client.get("/ui/").text
    assert report(master, 1).status_code in (200, 201)
    time.sleep(3.5)  # heartbeat_s=1, offline after 3 missed heartbeats
    for n in (2, 3):
        assert report(master, n).status_code in (200, 201)
    for _ in range(3):
        assert report(master, 4, token="wrong").status_code == 401
    bundle = write_tar(tmp_path / "b.tar", image_members("overview-1"))
    with master.admin() as api:
        imported = api.post("/api/v1/images/import", files={"file": ("b.tar", bundle.read_bytes())})
        assert imported.status_code == 201, imported.text
        api.post("/api/v1/images/overview-1/activate").raise_for_status()

    deadline = time.monotonic() + 20  # refusals are written every few seconds
    while (shown := counts(client))["refused"][1] < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert {name: n for name, (_, n) in shown.items()} == {"online": 2, "offline": 1, "refused": 3}
    page = client.get("/ui/").text
    assert '<p><a href="/ui/images/overview-1">overview-1</a></p>' in page
    assert "refused reports (24 h)" in page
    events = ROW.findall(page)
    macs = [machine_facts(n)["nics"][0]["mac"] for n in (4, 3, 2, 1)]
    assert [mac for _, mac in events] == macs  # newest first: the refused one, then reports
    assert events[0][0] == "refused" and {kind for kind, _ in events[1:]} == {"report"}
