"""The console shows a node's name and tags on the list and its page, and the list
filters on a tag and a name (set through PATCH /api/v1/nodes/{id})."""

from __future__ import annotations

import re

import httpx
import pytest

from fleet import machine_facts, report_body
from masterproc import Master

pytestmark = pytest.mark.integration

LINK = re.compile(r'<a class="node-link[^"]*" href="/ui/nodes/([0-9a-f-]+)"')


def new_node(master: Master, n: int) -> str:
    facts = machine_facts(n)
    with master.discovery() as client:
        answer = client.post("/api/v1/discovery", json=report_body(facts, facts["nics"][0]["mac"]))
    assert answer.status_code in (200, 201), answer.text
    node_id: str = answer.json()["node_id"]
    return node_id


def test_names_and_tags_on_the_list_and_the_page(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    tagged, other = new_node(master, 900), new_node(master, 901)
    with master.admin() as admin:
        answer = admin.patch(
            f"/api/v1/nodes/{tagged}", json={"name": "db7", "tags": ["db", "rack:7"]}
        )
        assert answer.status_code == 200, answer.text
    page = client.get("/ui/nodes", params={"tag": "rack:7"})
    assert page.status_code == 200
    assert LINK.findall(page.text) == [tagged]
    assert "db7" in page.text and 'href="/ui/nodes?tag=rack%3A7"' in page.text
    assert LINK.findall(client.get("/ui/nodes", params={"name": "db"}).text) == [tagged]
    assert other in LINK.findall(client.get("/ui/nodes").text)
    node = client.get(f"/ui/nodes/{tagged}")
    assert '<span id="node-name">db7</span>' in node.text and ">rack:7</a>" in node.text
