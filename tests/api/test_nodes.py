"""/api/v1/nodes and `livestrap nodes` against a real master process (heartbeat_s=1)."""

from __future__ import annotations

import itertools
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from livestrap.agent.report import facts_hash
from livestrap.cli.nodes_cmd import app as cli_app
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

_serial = itertools.count(1)


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("nodes") / "data", heartbeat_s=1) as m:
        yield m


@pytest.fixture(scope="module")
def admin(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as client:
        yield client


def machine() -> dict[str, Any]:
    n = next(_serial)
    return {
        "system": {
            "vendor": "Dell Inc.",
            "product": "PowerEdge R650",
            "serial": f"SN{n}",
            "uuid": str(uuid.uuid4()),
        },
        "nics": [{"name": "eno1", "mac": f"b8:ca:3a:00:{n:02x}:01"}],
    }


def report(master: Master, facts: dict[str, Any], node_id: str | None = None) -> str:
    """One agent report (facts, or a heartbeat when node_id is given); the node id."""
    payload = {
        "agent_version": "0.1.0",
        "image_id": "img-1",
        "boot_mac": facts["nics"][0]["mac"],
        "node_id": node_id,
        "facts_hash": facts_hash(facts),
        "facts": None if node_id else facts,
        "failures": [],
        "uptime_s": 90,
    }
    with master.discovery() as client:
        resp = client.post("/api/v1/discovery", json=payload)
    assert resp.status_code in (200, 201), resp.text
    answer: str = resp.json()["node_id"]
    return answer


def ids(admin: httpx.Client, **params: str) -> list[str]:
    resp = admin.get("/api/v1/nodes", params=params)
    assert resp.status_code == 200, resp.text
    return [n["id"] for n in resp.json()]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nodes"),
        ("GET", "/api/v1/nodes/x"),
        ("GET", "/api/v1/nodes/x/timeline"),
        ("DELETE", "/api/v1/nodes/x"),
    ],
)
def test_admin_token_required(master: Master, method: str, path: str) -> None:
    with master.anonymous() as anon:
        assert anon.request(method, path).status_code == 401
    with master.discovery() as client:  # the discovery token opens nothing else
        resp = client.request(method, path)
    assert resp.status_code == 401 and "detail" in resp.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nodes/nope"),
        ("GET", "/api/v1/nodes/nope/timeline"),
        ("DELETE", "/api/v1/nodes/nope"),
    ],
)
def test_unknown_node_is_404(admin: httpx.Client, method: str, path: str) -> None:
    resp = admin.request(method, path)
    assert resp.status_code == 404
    assert resp.json() == {"detail": "no node 'nope'"}


def test_show_node(master: Master, admin: httpx.Client) -> None:
    facts = machine()
    node_id = report(master, facts)
    shown = admin.get(f"/api/v1/nodes/{node_id}").json()
    assert shown["id"] == node_id and shown["status"] == "online"
    assert (shown["vendor"], shown["product"], shown["serial"]) == (
        "Dell Inc.",
        "PowerEdge R650",
        facts["system"]["serial"],
    )
    assert shown["macs"] == [facts["nics"][0]["mac"]] and shown["boot_mac"] == shown["macs"][0]
    assert shown["facts"] == facts and shown["failures"] == [] and shown["heartbeat_s"] == 1
    for key in ("first_seen_at", "last_seen_at"):
        at = datetime.fromisoformat(shown[key])
        assert at.tzinfo is not None and at.utcoffset() == UTC.utcoffset(None)
        assert abs(at.timestamp() - time.time()) < 60
    summary = next(n for n in admin.get("/api/v1/nodes").json() if n["id"] == node_id)
    assert {k: v for k, v in shown.items() if k in summary} == summary


def test_mac_filter_takes_any_format(master: Master, admin: httpx.Client) -> None:
    facts = machine()
    node_id = report(master, facts)
    report(master, machine())
    mac = facts["nics"][0]["mac"]
    for form in (mac, mac.upper(), mac.replace(":", "-"), mac.replace(":", "")):
        assert ids(admin, mac=form) == [node_id]
    assert ids(admin, mac="02:00:00:00:00:99") == []
    assert admin.get("/api/v1/nodes", params={"mac": "nonsense"}).status_code == 422
    assert admin.get("/api/v1/nodes", params={"status": "sleeping"}).status_code == 422


@pytest.mark.security
@pytest.mark.parametrize(
    "after",
    ["1.0,99999999999999999999", "1.0,-1", "1.0,2147483648", "1e300,1", "-1e300,1"],
)
def test_a_cursor_out_of_range_is_a_bad_cursor(
    master: Master, admin: httpx.Client, after: str
) -> None:
    """Review finding: an id past the column's integer overflowed (500); INTEGER is 32-bit
    on PostgreSQL, so that is the bound on both."""
    node_id = report(master, machine())
    resp = admin.get(f"/api/v1/nodes/{node_id}/timeline", params={"after": after})
    assert resp.status_code == 422, resp.text
    assert "not a cursor" in resp.json()["detail"]
    ok = admin.get(f"/api/v1/nodes/{node_id}/timeline", params={"after": "1.0,2147483647"})
    assert ok.status_code == 200


def test_offline_after_missed_heartbeats_and_online_again(
    master: Master, admin: httpx.Client
) -> None:
    """heartbeat_s=1, offline_after=3: three seconds of silence make a node offline."""
    quiet, alive = machine(), machine()
    quiet_id, alive_id = report(master, quiet), report(master, alive)
    assert {quiet_id, alive_id} <= set(ids(admin, status="online"))
    for _ in range(7):  # ~3.5 s, the alive node heartbeating every 0.5 s
        time.sleep(0.5)
        report(master, alive, node_id=alive_id)
    online, offline = ids(admin, status="online"), ids(admin, status="offline")
    assert alive_id in online and alive_id not in offline
    assert quiet_id in offline and quiet_id not in online
    assert admin.get(f"/api/v1/nodes/{quiet_id}").json()["status"] == "offline"
    report(master, quiet, node_id=quiet_id)  # a heartbeat brings it back
    assert quiet_id in ids(admin, status="online")
    kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{quiet_id}/timeline").json()]
    assert kinds == ["report", "heartbeat-resumed"]


def test_delete_forgets_the_node_and_its_macs(master: Master, admin: httpx.Client) -> None:
    facts = machine()
    node_id = report(master, facts)
    assert admin.delete(f"/api/v1/nodes/{node_id}").status_code == 204
    assert admin.get(f"/api/v1/nodes/{node_id}").status_code == 404
    assert ids(admin, mac=facts["nics"][0]["mac"]) == []
    new_id = report(master, facts)
    assert new_id != node_id
    # The old boot's events are unattached now, so the new node's timeline shows them.
    kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{new_id}/timeline").json()]
    assert kinds == ["report", "report"]


def add_rows(master: Master, node_ids: list[str]) -> None:
    """Nodes written straight into the master's database: ids chosen to share a prefix."""
    from livestrap.master.models import Node

    db = master.database()
    with db.session() as session:
        session.add_all(
            Node(id=i, heartbeat_s=1, first_seen_at=time.time(), last_seen_at=time.time(),
                 facts={}, failures=[], boots=1)
            for i in node_ids
        )  # fmt: skip
    db.dispose()


def test_unique_id_prefix_names_a_node(master: Master, admin: httpx.Client) -> None:
    node_id = report(master, machine())
    for ref in (node_id, node_id[:13], node_id[:9]):  # [:9] ends with "-"
        assert admin.get(f"/api/v1/nodes/{ref}").json()["id"] == node_id
        kinds = [e["kind"] for e in admin.get(f"/api/v1/nodes/{ref}/timeline").json()]
        assert kinds == ["report"]
    assert admin.delete(f"/api/v1/nodes/{node_id[:13]}").status_code == 204
    assert admin.get(f"/api/v1/nodes/{node_id}").status_code == 404


def test_ambiguous_node_prefix_is_409_listing_the_candidates(
    master: Master, admin: httpx.Client
) -> None:
    first, second = "feedface-0000-4000-8000-000000000001", "feedface-0000-4000-8000-000000000002"
    add_rows(master, [first, second])
    for method, path in [("GET", ""), ("GET", "/timeline"), ("DELETE", "")]:
        resp = admin.request(method, f"/api/v1/nodes/feedface{path}")
        assert resp.status_code == 409, resp.text
        assert resp.json() == {
            "detail": f"node id prefix 'feedface' is ambiguous: {first}, {second}"
        }
    assert admin.get(f"/api/v1/nodes/{first[:-1]}").status_code == 409
    assert admin.get(f"/api/v1/nodes/{second[:-1]}2").json()["id"] == second
    assert admin.get("/api/v1/nodes/feedfacf").status_code == 404
    assert admin.get("/api/v1/nodes/feedface%25").status_code == 404  # % is no wildcard
    for node_id in (first, second):
        assert admin.delete(f"/api/v1/nodes/{node_id}").status_code == 204


def cli(master: Master, *args: str) -> str:
    argv = [*args, "--master", master.url, "--token", master.admin_token]
    result = CliRunner().invoke(cli_app, argv, env={"COLUMNS": "80"})  # ids stay whole at 80
    assert result.exit_code == 0, result.output
    return result.stdout


def test_cli(master: Master) -> None:
    facts = machine()
    node_id = report(master, facts)
    mac = facts["nics"][0]["mac"]
    listed = json.loads(cli(master, "list", "-o", "json", "--mac", mac))
    assert [n["id"] for n in listed] == [node_id]
    assert cli(master, "list", "--mac", mac, "-q") == f"{node_id}\n"
    table = cli(master, "list", "--status", "online")
    assert node_id in table and f"{node_id}  online" in table  # piped: whole, no markup
    assert facts["system"]["serial"] in cli(master, "list", "-o", "wide")
    assert json.loads(cli(master, "show", node_id, "-o", "json"))["facts"] == facts
    described = cli(master, "show", node_id[:8])
    assert f"ID:          {node_id}" in described and facts["system"]["serial"] in described
    assert "report" in cli(master, "timeline", node_id[:8])
    events = json.loads(cli(master, "timeline", node_id, "-o", "json"))
    assert [e["kind"] for e in events] == ["report"]
    assert f"deleted node {node_id}" in cli(master, "delete", node_id[:8])
    gone = CliRunner().invoke(
        cli_app, ["--master", master.url, "--token", master.admin_token, "show", node_id]
    )
    assert gone.exit_code != 0


def test_cli_json_flag_still_works(master: Master) -> None:
    facts = machine()
    node_id = report(master, facts)
    argv = ["list", "--mac", facts["nics"][0]["mac"], "--json"]
    result = CliRunner().invoke(
        cli_app, argv, env={"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token}
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["id"] == node_id
    assert "deprecated" in result.stderr
