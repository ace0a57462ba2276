"""Hostile reports and headers that made 500s: deep or huge facts, lone UTF-16 surrogates,
integers past Python's 4,300-digit limit, a Range header of thousands of digits. Each is
refused cleanly (422 / 416) and the master keeps answering; rows stored before the
checks existed stay readable."""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from livestrap.master.db import Database
from livestrap.master.events import record_event
from livestrap.master.models import Node, NodeMac
from livestrap.master.schemas.bounds import MAX_DEPTH, MAX_ITEMS
from masterproc import PG_ADMIN_URL, Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from store_helpers import artifact_bytes, write_image_dir

pytestmark = [pytest.mark.integration, pytest.mark.security]

URL = "/api/v1/discovery"
JSON = {"Content-Type": "application/json"}
IMAGE = "img-1"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("hostile") / "data"
    write_image_dir(data / "images", IMAGE)
    with master_process(data) as m:
        yield m


def report(**facts: Any) -> dict[str, Any]:
    mac = "52:54:00:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])
    return {
        "agent_version": "0.1.0",
        "boot_mac": mac,
        "facts": {"system": {"uuid": str(uuid.uuid4())}, "nics": [{"mac": mac}], **facts},
        "uptime_s": 5,
    }


def post_raw(master: Master, raw: bytes) -> httpx.Response:
    with master.discovery() as client:
        return client.post(URL, content=raw, headers=JSON)


def assert_422(resp: httpx.Response, words: str) -> None:
    assert resp.status_code == 422, resp.text
    assert words in json.dumps(resp.json()["detail"])


@pytest.mark.parametrize(
    "field",
    ["agent_version", "image_id", "boot_mac", "node_id", "facts_hash", "fact", "key", "failure"],
)
def test_lone_surrogate_anywhere_is_422(master: Master, field: str) -> None:
    body = report()
    if field == "fact":
        body["facts"]["system"]["vendor"] = "\ud800"
    elif field == "key":
        body["facts"]["\udfff"] = 1
    elif field == "failure":
        body["failures"] = [{"collector": "cpu", "error": "x\udc80y"}]
    else:
        body[field] = "\ud83d"  # half of an emoji
    resp = post_raw(master, json.dumps(body).encode())  # ensure_ascii: "\\ud83d" escapes
    assert_422(resp, "surrogate")


@pytest.mark.parametrize("field", ["agent_version", "image_id", "node_id", "facts_hash"])
def test_a_nul_in_a_text_column_field_is_422(master: Master, field: str) -> None:
    """PostgreSQL's text refuses NUL: found by the fuzz test as a 500 there."""
    body = report()
    body[field] = "\x00"
    assert_422(post_raw(master, json.dumps(body).encode()), "NUL")


@pytest.mark.parametrize(
    "selector",
    [{"tag": "a\x00"}, {"macs": ["52:54:00:00:00:\x00"]}, {"ids": ["\x00"]}],
)
def test_a_nul_in_an_action_selector_is_422(master: Master, selector: dict[str, Any]) -> None:
    """The fuzz test's 500 on PostgreSQL: the selector's strings go into a query."""
    body = {"kind": "reboot", "selector": selector}
    with master.admin() as client:
        assert_422(client.post("/api/v1/actions", json=body), "NUL")


@pytest.mark.parametrize("param", ["mac", "tag", "name", "after"])
def test_a_nul_in_a_node_filter_is_422(master: Master, param: str) -> None:
    with master.admin() as client:
        assert_422(client.get("/api/v1/nodes", params={param: "a\x00"}), "NUL")


def test_a_nul_in_a_fact_is_kept_but_not_in_the_search_columns(master: Master) -> None:
    body = report()
    body["facts"]["system"]["serial"] = "S\x00N"
    resp = post_raw(master, json.dumps(body).encode())
    assert resp.status_code in (200, 201), resp.text


def test_paired_surrogates_are_just_unicode(master: Master) -> None:
    body = report()
    body["facts"]["system"]["vendor"] = "\U0001f600 Inc."
    resp = post_raw(master, json.dumps(body).encode())
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize("depth", [MAX_DEPTH, 900, 5000, 200_000])
def test_deep_facts_are_422(master: Master, depth: int) -> None:
    """900 passes json.loads and used to 500; 5,000 makes json.loads raise RecursionError."""
    body = json.dumps(report(deep="@")).encode()
    resp = post_raw(master, body.replace(b'"@"', b"[" * depth + b"]" * depth))
    assert_422(resp, "nested")


def test_facts_nesting_within_the_bound_is_kept(master: Master) -> None:
    nested: Any = "leaf"
    for _ in range(MAX_DEPTH - 4):  # report > facts > nested ... (containers counted)
        nested = [nested]
    resp = post_raw(master, json.dumps(report(nested=nested)).encode())
    assert resp.status_code == 201, resp.text


def test_too_many_values_are_422(master: Master) -> None:
    resp = post_raw(master, json.dumps(report(many=[0] * (MAX_ITEMS + 1))).encode())
    assert_422(resp, f"more than {MAX_ITEMS} values")


@pytest.mark.parametrize("where", ["uptime_s", "fact"])
def test_integer_past_the_digit_limit_is_422(master: Master, where: str) -> None:
    body = json.dumps(report(big="@", uptime_s=5)).encode()
    target = b'"@"' if where == "fact" else b'"uptime_s": 5'
    replacement = b"9" * 4301 if where == "fact" else b'"uptime_s": ' + b"9" * 4301
    resp = post_raw(master, body.replace(target, replacement))
    assert_422(resp, "4300")


def test_huge_uptime_is_422(master: Master) -> None:
    body = report()
    body["uptime_s"] = 10**400  # fits int(), not a float: made 500 in the boot arithmetic
    resp = post_raw(master, json.dumps(body).encode())
    assert_422(resp, "uptime_s")


def test_body_that_is_not_utf8_is_422(master: Master) -> None:
    body = json.dumps(report(vendor="@")).encode().replace(b'"@"', b'"\xed\xa0\x80"')
    resp = post_raw(master, body)
    assert resp.status_code == 422, resp.text


def test_surrogates_stored_before_the_checks_stay_readable(master: Master) -> None:
    """Rows written by an older master may hold lone surrogates; GET must not 500."""
    if PG_ADMIN_URL:
        pytest.skip(
            "SQLite only: PostgreSQL's json operators refuse a stored lone surrogate "
            "(known gap, docs/security.md); new reports with one are refused on both"
        )
    node_id, mac = str(uuid.uuid4()), "52:54:00:ee:ee:01"
    db = Database(master.database_url)
    try:
        with db.session() as s:
            now = time.time()
            s.add(Node(id=node_id, boot_mac=mac, facts={"system": {"vendor": "bad\ud800"},
                       "\udc00key": ["\udfff"]}, failures=[{"collector": "x", "error": "\ud801"}],
                       heartbeat_s=30, first_seen_at=now, last_seen_at=now, boots=1))  # fmt: skip
            s.add(NodeMac(mac=mac, node_id=node_id))
        with db.session() as s:
            record_event(s, "report", mac=mac, node_id=node_id, detail={"note": "\udbff"})
    finally:
        db.dispose()
    with master.admin() as admin:
        shown = admin.get(f"/api/v1/nodes/{node_id}")
        listed = admin.get("/api/v1/nodes", params={"mac": mac})
        timeline = admin.get(f"/api/v1/nodes/{node_id}/timeline")
    assert shown.status_code == 200, shown.text
    assert shown.json()["vendor"] == "bad\ufffd"
    assert shown.json()["facts"]["\ufffdkey"] == ["\ufffd"]
    assert shown.json()["failures"] == [{"collector": "x", "error": "\ufffd"}]
    assert listed.status_code == 200, listed.text
    assert [n["id"] for n in listed.json()] == [node_id]
    assert timeline.status_code == 200, timeline.text
    assert timeline.json()[-1]["detail"] == {"note": "\ufffd"}


@pytest.mark.parametrize(
    ("header", "status"),
    [
        ("bytes=" + "9" * 4301 + "-", 416),  # starts past the end
        ("bytes=0-" + "9" * 4301, 206),  # ends past the end: the whole file, as 206
        ("bytes=-" + "9" * 4301, 206),  # the last 10^4301 bytes: the whole file
        ("bytes=" + "0" * 4300 + "3-" + "0" * 4300 + "5", 206),  # leading zeros still count
        ("bytes=" + "9" * 5000 + "-" + "9" * 5000, 416),
    ],
)
def test_range_with_thousands_of_digits(master: Master, header: str, status: int) -> None:
    data = artifact_bytes(IMAGE)["root.squashfs"]
    with master.anonymous() as client:
        resp = client.get(f"/boot/images/{IMAGE}/root.squashfs", headers={"Range": header})
    assert resp.status_code == status, resp.text
    if header.startswith("bytes=000"):
        assert resp.content == data[3:6]
    elif status == 206:
        assert resp.content == data
