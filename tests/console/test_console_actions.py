"""The node page's Actions section against a real master: queue each kind with the CSRF
field, see them listed with their state, exit code and output tail (a hostile tail
shown as text), and refusals shown as a page naming the field."""

from __future__ import annotations

import itertools
from typing import Any

import httpx
import pytest

from fleet import machine_facts, report_body
from masterproc import Master

pytestmark = pytest.mark.integration

_n = itertools.count(300)
EVIL = "<script>alert(1)</script>"


def new_node(master: Master) -> tuple[str, dict[str, Any]]:
    facts = machine_facts(next(_n))
    with master.discovery() as client:
        answer = client.post("/api/v1/discovery", json=report_body(facts, facts["nics"][0]["mac"]))
    assert answer.status_code in (200, 201), answer.text
    return answer.json()["node_id"], facts


def heartbeat(master: Master, node_id: str, facts: dict[str, Any]) -> list[dict[str, Any]]:
    body = {**report_body(facts, facts["nics"][0]["mac"]), "node_id": node_id, "facts": None}
    with master.discovery() as client:
        answer = client.post("/api/v1/discovery", json=body)
    assert answer.status_code == 200, answer.text
    orders: list[dict[str, Any]] = answer.json()["actions"]
    return orders


def test_queue_actions_from_the_node_page(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    client, csrf = console
    node_id, facts = new_node(master)
    page = client.get(f"/ui/nodes/{node_id}")
    assert 'id="actions"' in page.text and "None yet." in page.text
    for kind in ("reinspect", "reboot", "poweroff"):
        assert f'id="action-{kind}"' in page.text
    url = f"/ui/nodes/{node_id[:8]}/actions"
    assert client.post(url, data={"kind": "reboot"}).status_code == 403  # no CSRF token
    answer = client.post(url, data={"csrf_token": csrf, "kind": "install",
                                    "packages": "htop, livestrap-agent=0.2.0"})  # fmt: skip
    assert answer.status_code == 303
    assert answer.headers["location"] == f"/ui/nodes/{node_id}#actions"
    assert client.post(url, data={"csrf_token": csrf, "kind": "reboot"}).status_code == 303
    orders = heartbeat(master, node_id, facts)
    packages = [{"name": "htop", "version": None}, {"name": "livestrap-agent", "version": "0.2.0"}]
    assert [(o["kind"], o["args"]) for o in orders] == [("install", {"packages": packages})]
    with master.discovery() as agent:
        done = agent.post(f"/api/v1/discovery/actions/{orders[0]['id']}/result", json={
            "node_id": node_id, "status": "failed", "exit_code": 100, "took_s": 4.0,
            "output_tail": f"E: Unable to locate package {EVIL}", "error": EVIL})  # fmt: skip
    assert done.status_code == 200, done.text
    page = client.get(f"/ui/nodes/{node_id}").text
    section = page.split('id="actions"')[1].split("</section>")[0]
    assert 'data-state="failed" data-kind="install"' in section
    assert 'data-state="queued" data-kind="reboot"' in section
    assert "htop livestrap-agent=0.2.0" in section and "4.0 s" in section and ">100<" in section
    assert EVIL not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in section
    assert "<pre>E: Unable to locate package &lt;script&gt;" in section
    with master.admin() as admin:
        listed = admin.get(f"/api/v1/nodes/{node_id}/actions").json()
    assert {a["requested_by"] for a in listed} == {"console"}


@pytest.mark.parametrize(
    ("form", "status", "says"),
    [
        ({"kind": "shell"}, 422, "kind"),
        ({"kind": "install", "packages": ""}, 422, "packages"),
        ({"kind": "install", "packages": "Bad_Name"}, 422, "name"),
        ({"kind": "install", "packages": "htop="}, 422, "PKG=VERSION"),
        ({"kind": "install", "packages": "x" * 9000}, 422, "too long"),
    ],
)
def test_refused_actions_show_the_field(
    master: Master, console: tuple[httpx.Client, str], form: dict[str, str], status: int,
    says: str,
) -> None:  # fmt: skip
    client, csrf = console
    node_id, _ = new_node(master)
    answer = client.post(f"/ui/nodes/{node_id}/actions", data={"csrf_token": csrf, **form})
    assert answer.status_code == status and 'id="problem"' in answer.text
    assert says in answer.text


def test_an_unknown_node_is_a_404_page(console: tuple[httpx.Client, str]) -> None:
    client, csrf = console
    answer = client.post("/ui/nodes/nobody/actions", data={"csrf_token": csrf, "kind": "reboot"})
    assert answer.status_code == 404 and 'id="problem"' in answer.text
