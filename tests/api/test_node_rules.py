"""PATCH /api/v1/nodes/{id}, the list's tag and name filters, /api/v1/rules and its dry
run, against a real master process; and `livestrap nodes set` / `rules` through it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from livestrap.agent.report import facts_hash
from livestrap.cli import app as cli_app
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

RULES = {
    "rules": [
        {"name": "big", "if": "memory.total >= 64GiB", "add_tags": ["big"]},
        {"name": "by-serial", "if": "system.vendor is match('Dell')",
         "set_name": "{{ system.serial | lower }}", "add_tags": ["dell"]},
        {"name": "reboot-small", "if": "memory.total < 64GiB", "action": {"kind": "reboot"}},
    ]
}  # fmt: skip


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("rules") / "data") as m:
        yield m


@pytest.fixture(scope="module")
def admin(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as client:
        yield client


def register(master: Master, serial: str, memory: int = 2**37) -> str:
    n = uuid.uuid4().bytes
    mac = "b8:ca:3a:" + ":".join(f"{b:02x}" for b in n[:3])
    facts = {
        "system": {"vendor": "Dell Inc.", "product": "R650", "serial": serial,
                   "uuid": str(uuid.uuid4())},
        "memory": {"total": memory},
        "nics": [{"name": "eno1", "mac": mac}],
    }  # fmt: skip
    payload = {"agent_version": "0.1.0", "image_id": "img-1", "boot_mac": facts["nics"][0]["mac"],
               "node_id": None, "facts_hash": facts_hash(facts), "facts": facts, "failures": [],
               "uptime_s": 90}  # fmt: skip
    with master.discovery() as client:
        resp = client.post("/api/v1/discovery", json=payload)
    assert resp.status_code in (200, 201), resp.text
    node_id: str = resp.json()["node_id"]
    return node_id


def test_patch_sets_name_and_tags_and_the_list_filters_on_them(
    master: Master, admin: httpx.Client
) -> None:
    a, b = register(master, "P-1"), register(master, "P-2")
    resp = admin.patch(
        f"/api/v1/nodes/{a}", json={"name": "Web1", "tags": ["web", "rack:4", "web"]}
    )
    assert resp.status_code == 200, resp.text
    assert (resp.json()["name"], resp.json()["tags"]) == ("web1", ["rack:4", "web"])
    assert admin.patch(f"/api/v1/nodes/{b}", json={"tags": ["web"]}).status_code == 200
    listed = admin.get("/api/v1/nodes", params={"tag": "web"}).json()
    assert sorted(n["id"] for n in listed) == sorted([a, b])
    assert [n["id"] for n in admin.get("/api/v1/nodes", params={"name": "WEB1"}).json()] == [a]
    assert admin.get("/api/v1/nodes", params={"tag": "nope"}).json() == []
    assert admin.get("/api/v1/nodes/web1").json()["id"] == a  # a name finds the node
    # taken by another node: 409, nothing changed
    resp = admin.patch(f"/api/v1/nodes/{b}", json={"name": "web1"})
    assert resp.status_code == 409 and a in resp.json()["detail"]
    assert admin.get(f"/api/v1/nodes/{b}").json()["name"] is None
    # a field left out stays; null clears the name
    resp = admin.patch(f"/api/v1/nodes/{a}", json={"name": None})
    assert resp.json()["name"] is None and resp.json()["tags"] == ["rack:4", "web"]
    kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{a}/timeline").json()]
    assert kinds.count("node-edited") == 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "-bad-"}, "name"),
        ({"name": "a" * 64}, "name"),
        ({"name": "under_score"}, "name"),
        ({"tags": ["Upper"]}, "tags"),
        ({"tags": ["ok", ""]}, "tags"),
        ({"tags": "web"}, "tags"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_patch_bad_input_is_a_422_naming_the_field(
    master: Master, admin: httpx.Client, body: dict[str, Any], field: str
) -> None:
    node = register(master, f"B-{field}-{len(json.dumps(body))}")
    resp = admin.patch(f"/api/v1/nodes/{node}", json=body)
    assert resp.status_code == 422, resp.text
    assert field in json.dumps(resp.json()["detail"])


def test_rules_put_get_and_refusals(admin: httpx.Client) -> None:
    resp = admin.put("/api/v1/rules", json=RULES)
    assert resp.status_code == 200, resp.text
    got = admin.get("/api/v1/rules").json()
    assert [r["name"] for r in got["rules"]] == ["big", "by-serial", "reboot-small"]
    assert got["rules"][0]["if"] == "memory.total >= 64GiB"
    for rule, where in [
        ({"name": "evil", "if": "'a' * 10**9"}, "evil"),
        ({"name": "dunder", "if": "system.__class__"}, "dunder"),
        ({"name": "pattern", "if": "true", "set_name": "{% for i in x %}{% endfor %}"},
         "pattern"),
        ({"name": "act", "if": "true", "action": {"kind": "shell", "args": {}}}, "kind"),
        ({"name": "pkg", "if": "true",
          "action": {"kind": "install", "args": {"packages": [{"name": "A B"}]}}}, "name"),
        ({"name": "tag", "if": "true", "add_tags": ["NO"]}, "add_tags"),
    ]:  # fmt: skip
        resp = admin.put("/api/v1/rules", json={"rules": [rule]})
        assert resp.status_code == 422, (rule, resp.text)
        assert where in json.dumps(resp.json()["detail"]), resp.text
    twice = {"rules": [RULES["rules"][0], RULES["rules"][0]]}
    assert admin.put("/api/v1/rules", json=twice).status_code == 422
    assert admin.get("/api/v1/rules").json() == got  # nothing refused was stored


def test_dry_run_changes_nothing(master: Master, admin: httpx.Client) -> None:
    admin.put("/api/v1/rules", json=RULES)
    small = register(master, "DRY-1", memory=2**33)
    before = admin.get(f"/api/v1/nodes/{small}").json()
    events = admin.get(f"/api/v1/nodes/{small}/timeline").json()
    resp = admin.post("/api/v1/rules/dry-run", json={})
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["nodes"] >= 1 and result["actions"] >= 1
    mine = next(r for r in result["reports"] if r["node_id"] == small)
    assert mine["name"] == "dry-1" and "dell" in mine["tags"]
    assert [o["action"] for o in mine["outcomes"] if o["action"]] == ["reboot"]
    assert admin.get(f"/api/v1/nodes/{small}").json() == before
    assert admin.get(f"/api/v1/nodes/{small}/timeline").json() == events
    only = admin.post("/api/v1/rules/dry-run", json={"rules": [RULES["rules"][0]]}).json()
    assert only["renamed"] == 0 and only["actions"] == 0
    assert (
        admin.post(
            "/api/v1/rules/dry-run", json={"rules": [{"name": "x", "if": "2**99"}]}
        ).status_code
        == 422
    )
    assert admin.post("/api/v1/rules/dry-run").status_code == 200  # no body: the stored rules


def test_rules_need_the_admin_token(master: Master) -> None:
    with master.anonymous() as anon:
        assert anon.get("/api/v1/rules").status_code == 401
        assert anon.post("/api/v1/rules/dry-run", json={}).status_code == 401
        assert anon.patch("/api/v1/nodes/x", json={}).status_code == 401


def test_cli_nodes_set_and_rules(master: Master, tmp_path: Path) -> None:
    with master.admin() as admin:  # an earlier test's rules would tag it at registration
        admin.put("/api/v1/rules", json={"rules": []}).raise_for_status()
    node = register(master, "CLI-1")
    env = {"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token}
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, list(args), env=env)
        assert result.exit_code == 0, result.output
        return result.output

    assert "name cli1; a, b" in run(
        "nodes", "set", node[:12], "--name", "cli1", "--tag", "a", "--tag", "b"
    )
    assert "name cli1; b" in run("nodes", "set", "cli1", "--untag", "a")
    rules = tmp_path / "rules.yaml"
    rules.write_text("- name: big\n  if: memory.total >= 64GiB\n  add_tags: [big]\n")
    assert "1 rules saved" in run("rules", "set", str(rules))
    assert "name: big" in run("rules", "show")
    out = run("rules", "test")
    assert f"{node}  big: tags +big" in out and "nodes:" in out, out
    refused = runner.invoke(cli_app, ["rules", "test", str(tmp_path / "bad.yaml")], env=env)
    assert refused.exit_code != 0


def test_rules_run_when_a_node_registers(master: Master) -> None:
    rule = {"name": "big", "if": "memory.total >= 64GiB", "add_tags": ["big", "new"]}
    with master.admin() as admin:
        admin.put("/api/v1/rules", json={"rules": [rule]}).raise_for_status()
        try:
            node = register(master, "AT-REGISTRATION-1")
            shown = admin.get(f"/api/v1/nodes/{node}").json()
            assert {"big", "new"} <= set(shown["tags"]), shown
            kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{node}/timeline").json()]
            assert "rules-applied" in kinds
        finally:
            admin.put("/api/v1/rules", json={"rules": []}).raise_for_status()
