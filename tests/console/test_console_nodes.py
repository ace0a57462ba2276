"""The console's nodes pages against a real master: nodes registered by agent-shaped
reports over HTTP, searched by every filter, paged, opened, their boot timeline drawn,
forgotten; hostile strings from a node shown as text."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fleet import machine_facts, report_body
from masterproc import Master

pytestmark = pytest.mark.integration

_n = itertools.count(100)
LINK = re.compile(r'<a class="node-link[^"]*" href="/ui/nodes/([0-9a-f-]+)"')
PHASE = re.compile(r'<g class="phase" data-phase="(\w+)" data-state="(\w+)">')
XSS = ("<script>alert(1)</script>", '"><img src=x onerror=alert(1)>')


def register(master: Master, facts: dict[str, Any], token: str | None = None) -> httpx.Response:
    body = report_body(facts, facts["nics"][0]["mac"])
    with master.discovery(token) as client:
        return client.post("/api/v1/discovery", json=body)


def new_node(master: Master, **system: Any) -> tuple[str, dict[str, Any]]:
    facts = machine_facts(next(_n), **system)
    answer = register(master, facts)
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["node_id"], facts


def listed(client: httpx.Client, **params: str) -> list[str]:
    answer = client.get("/ui/nodes", params=params)
    assert answer.status_code == 200, answer.text
    assert 'id="node-filters"' in answer.text and 'id="nodes"' in answer.text
    return LINK.findall(answer.text)


@pytest.fixture(scope="module")
def fleet(master: Master) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    yield [new_node(master, vendor=f"Vendor{i}", product=f"Model-{i}") for i in range(3)]


def test_each_filter_finds_its_node(
    fleet: list[tuple[str, dict[str, Any]]], console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    node_id, facts = fleet[1]
    mac = facts["nics"][1]["mac"]  # not the boot MAC: every MAC the node has counts
    for params in (
        {"vendor": "vendor1"},  # any case, any part
        {"product": "Model-1"},
        {"serial": facts["system"]["serial"]},
        {"mac": mac.upper().replace(":", "-")},
        {"mac": mac[-5:]},
        {"q": node_id[:8]},
        {"q": facts["system"]["serial"].lower()},
        {"q": "vendor1"},
    ):
        assert listed(client, **params) == [node_id], params
    assert {i for i, _ in fleet} <= set(listed(client, status="online", image="img-1"))
    assert listed(client, status="offline") == []
    assert listed(client, vendor="%") == [] and listed(client, serial="_") == []  # literals


def test_bad_filters_show_the_problem(console: tuple[httpx.Client, str]) -> None:
    client, _ = console
    for params in ({"status": "lost"}, {"after": "nonsense"}, {"q": "x" * 101}):
        answer = client.get("/ui/nodes", params=params)
        assert answer.status_code == 422 and 'id="problem"' in answer.text, params
        assert "text/html" in answer.headers["content-type"]


def test_the_list_pages(
    master: Master, fleet: list[tuple[str, dict[str, Any]]], console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    more = [new_node(master, vendor="PagedCorp")[0] for _ in range(53)]  # a page is 50
    seen: list[str] = []
    url: str | None = "/ui/nodes?vendor=PagedCorp"
    while url:
        page = client.get(url)
        seen += LINK.findall(page.text)
        assert "53 nodes match" in page.text
        found = re.search(r'href="([^"]+)" id="next-page"', page.text)
        url = found[1].replace("&amp;", "&") if found else None
    assert seen == more  # in the order they registered, none twice, none left out


def test_a_node_page_lays_out_its_hardware(
    fleet: list[tuple[str, dict[str, Any]]], console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    node_id, facts = fleet[0]
    page = client.get(f"/ui/nodes/{node_id}")
    assert page.status_code == 200
    text = page.text
    assert f'<h1 class="mono">{node_id}</h1>' in text
    for needle in ('id="hardware"', 'id="disks"', 'id="nics"', 'id="pci"', 'id="raw"',
                   "Vendor0", facts["system"]["serial"], "2 sockets, 64 cores, 128 threads",
                   "256.0 GiB (8 DIMMs)", "894.1 GiB", "25 Gb/s", "leaf-",
                   "Ethernet Controller E810-XXV",
                   'data-confirm="Forget this node?"'):  # fmt: skip
        assert needle in text, needle
    assert client.get("/ui/nodes/nope").status_code == 404


def _phases(client: httpx.Client, node_id: str) -> dict[str, str]:
    page = client.get(f"/ui/nodes/{node_id}")
    assert 'class="timeline" id="timeline"' in page.text
    return dict(PHASE.findall(page.text))


def test_the_timeline_shows_where_a_boot_stopped(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    node_id, facts = new_node(master)
    phases = _phases(client, node_id)
    assert list(phases) == ["firmware", "script", "kernel", "initrd", "squashfs", "report"]
    assert set(phases.values()) == {"done"}  # reported: every phase passed
    mac = facts["nics"][0]["mac"]
    with master.anonymous() as anon:  # it reboots: the script is fetched (a real request)
        assert anon.get("/boot/ipxe", params={"mac": mac}).status_code == 200
    phases = _phases(client, node_id)
    assert phases["script"] == "running" and phases["kernel"] == "missing"
    assert phases["report"] == "missing"


def test_a_boot_stuck_for_long_shows_stalled(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    from sqlalchemy import update

    from livestrap.master.events import record_event
    from livestrap.master.models import BootEvent

    client, _ = console
    node_id, facts = new_node(master)
    db = master.database()
    try:  # as if it had reported long ago, then rebooted and hung in the initrd 15 min ago
        with db.session() as s:
            s.execute(update(BootEvent).where(BootEvent.node_id == node_id)
                      .values(at=time.time() - 5000))  # fmt: skip
            start = time.time() - 900
            for offset, kind in ((0, "script"), (2, "kernel"), (5, "initrd")):
                record_event(s, kind, mac=facts["nics"][0]["mac"], at=start + offset)
    finally:
        db.dispose()
    phases = _phases(client, node_id)
    assert (phases["script"], phases["kernel"]) == ("done", "done")
    assert phases["initrd"] == "stalled" and phases["squashfs"] == phases["report"] == "missing"


def test_refused_reports_show_their_reason(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    node_id, facts = new_node(master)
    with master.anonymous() as anon:
        anon.get("/boot/ipxe", params={"mac": facts["nics"][0]["mac"]})
    assert register(master, facts, token="stale-token").status_code == 401
    page = client.get(f"/ui/nodes/{node_id}")
    refusals = page.text.split('id="refusals"')[1].split("</ul>")[0]
    assert 'class="refusal"' in refusals and "token" in refusals
    assert dict(PHASE.findall(page.text))["report"] == "refused"


def test_forget_a_node(master: Master, console: tuple[httpx.Client, str]) -> None:
    client, csrf = console
    node_id, _ = new_node(master)
    assert client.post(f"/ui/nodes/{node_id}/delete").status_code == 403  # no CSRF token
    answer = client.post(f"/ui/nodes/{node_id}/delete", data={"csrf_token": csrf})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui/nodes"
    assert client.get(f"/ui/nodes/{node_id}").status_code == 404
    with master.admin() as admin:
        assert admin.get(f"/api/v1/nodes/{node_id}").status_code == 404
    gone = client.post(f"/ui/nodes/{node_id}/delete", data={"csrf_token": csrf})
    assert gone.status_code == 404 and 'id="problem"' in gone.text


@pytest.mark.security
@pytest.mark.parametrize("evil", XSS)
def test_hostile_node_strings_render_as_text(
    master: Master, console: tuple[httpx.Client, str], evil: str
) -> None:
    client, _ = console
    facts = machine_facts(next(_n), vendor=evil, product=evil, serial=evil)
    facts["nics"][0]["name"] = evil
    facts["nics"][0]["lldp"] = {"chassis_name": evil, "chassis_id": evil, "port_id": evil,
                                "port_descr": evil}  # fmt: skip
    facts["disks"][0]["model"] = evil
    facts["pci"][0]["device_name"] = evil
    answer = register(master, facts)
    assert answer.status_code in (200, 201), answer.text
    node_id = answer.json()["node_id"]
    for url in ("/ui/nodes", f"/ui/nodes/{node_id}", f"/ui/nodes?{httpx.QueryParams(q=evil)}"):
        text = client.get(url).text
        assert "<script>alert" not in text and "<img src=x" not in text, url
    page = client.get(f"/ui/nodes/{node_id}").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page or "&#34;&gt;&lt;img src=x" in page
