"""Request body caps (finding 1): 413 with a JSON detail before the body is buffered,
for a declared Content-Length and for chunked bodies; the token of a discovery report is
checked before its body is read; the bundle import's larger cap opens only to the admin.

In-process through raw ASGI (tests/asgi.py) where what matters is how many bytes the
master pulled, and against a real master for what a client on the wire sees.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from asgi import bearer, call, master_app
from livestrap.master.models import BootEvent
from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from store_helpers import tmp_entries

pytestmark = [pytest.mark.integration, pytest.mark.security]

MIB = 1 << 20
URL = "/api/v1/discovery"
IMPORT = "/api/v1/images/import"
JSON = {"content-type": "application/json"}
PREFIX = b'{"agent_version": "0.1.0", "image_id": "img-1", "boot_mac": "52:54:00:aa:00:01", '


def fifty_mib() -> list[bytes]:
    """A 50 MiB report, as 1 MiB chunks (a chunked upload)."""
    return [PREFIX + b'"facts": {"x": "'] + [b"A" * MIB] * 50 + [b'"}}']


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    with master_process(tmp_path_factory.mktemp("limits") / "data") as m:
        yield m


def test_refused_report_reads_a_bounded_prefix_only(tmp_path: Path) -> None:
    with master_app(tmp_path / "data") as (app, state):
        answer = call(app, "POST", URL, headers=JSON, chunks=fifty_mib())
        wrong = call(app, "POST", URL, headers={**JSON, **bearer("x" * 43)}, chunks=fifty_mib())
        state.guards.flush()  # refusals are counted in memory, written every few seconds
        with state.db.session() as s:
            refused = list(s.scalars(select(BootEvent).filter_by(kind="refused")))
    assert (answer.status, wrong.status) == (401, 401)
    assert "discovery token" in answer.json()["detail"]
    assert answer.pulled <= 2 * MIB and wrong.pulled <= 2 * MIB  # two chunks of 50
    # the hints still come from the first bytes
    assert [(e.mac, e.image_id) for e in refused] == [("52:54:00:aa:00:01", "img-1")] * 2


def test_refused_report_with_huge_content_length_reads_nothing(tmp_path: Path) -> None:
    with master_app(tmp_path / "data") as (app, _):
        answer = call(
            app, "POST", URL, headers={**JSON, "content-length": str(50 * MIB)}, chunks=fifty_mib()
        )
    assert answer.status == 413 and answer.pulled == 0
    assert "LIVESTRAP_MAX_BODY_BYTES" in answer.json()["detail"]


def test_report_with_the_token_is_cut_off_at_the_cap(tmp_path: Path) -> None:
    with master_app(tmp_path / "data") as (app, state):
        answer = call(
            app, "POST", URL, headers={**JSON, **bearer(state.discovery_token)}, chunks=fifty_mib()
        )
    assert answer.status == 413, answer.body
    assert answer.json()["detail"].startswith(f"request body over {MIB} bytes")
    assert answer.pulled <= 3 * MIB
    assert answer.headers.get("connection") == "close"


def test_caps_are_settings(tmp_path: Path) -> None:
    with master_app(tmp_path / "data", max_body_bytes=1000) as (app, state):
        small = call(app, "PUT", "/api/v1/settings", headers={**JSON, **bearer(state.admin_token)},
                     chunks=[b'{"x": "' + b"y" * 2000 + b'"}'])  # fmt: skip
    assert small.status == 413
    assert small.json() == {
        "detail": "request body over 1000 bytes (the master's LIVESTRAP_MAX_BODY_BYTES)"
    }


def test_import_reads_nothing_before_the_admin_token(tmp_path: Path) -> None:
    chunks = [b"\0" * MIB] * 5  # over the JSON cap, under the import cap
    with master_app(tmp_path / "data") as (app, state):
        anonymous = call(app, "POST", IMPORT, chunks=chunks)
        discovery = call(app, "POST", IMPORT, headers=bearer(state.discovery_token), chunks=chunks)
        admin = call(app, "POST", IMPORT, headers=bearer(state.admin_token), chunks=chunks)
        leftovers = tmp_entries(state.store)
    assert (anonymous.status, discovery.status) == (401, 401)
    assert anonymous.pulled == discovery.pulled == 0
    assert admin.status == 422, admin.body  # read whole (5 MiB), then refused as no bundle
    assert admin.pulled == 5 * MIB
    assert leftovers == []


def test_import_over_its_own_cap_is_413_and_leaves_no_temp_file(tmp_path: Path) -> None:
    with master_app(tmp_path / "data", max_import_bytes=3 * MIB) as (app, state):
        answer = call(app, "POST", IMPORT, headers=bearer(state.admin_token),
                      chunks=[b"\0" * MIB] * 10)  # fmt: skip
        leftovers = tmp_entries(state.store)
    assert answer.status == 413
    assert "LIVESTRAP_MAX_IMPORT_BYTES" in answer.json()["detail"]
    assert answer.pulled <= 4 * MIB
    assert leftovers == []


def test_on_the_wire_content_length_and_chunked(master: Master) -> None:
    big = b'{"x": "' + b"A" * (2 * MIB) + b'"}'

    def chunked() -> Iterator[bytes]:
        for i in range(0, len(big), 64 * 1024):
            yield big[i : i + 64 * 1024]

    with master.discovery() as client:
        declared = client.post(URL, content=big, headers=JSON)
        streamed = client.post(URL, content=chunked(), headers=JSON)
    with master.admin() as admin:
        settings = admin.put("/api/v1/settings", content=big, headers=JSON)
        assert admin.get("/healthz").status_code == 200
    for resp in (declared, streamed, settings):
        assert resp.status_code == 413, resp.text
        assert "request body over" in resp.json()["detail"]


def test_absurd_content_length_is_413_not_500(master: Master) -> None:
    """4,301 digits: more than Python's int() takes."""
    with master.discovery() as client:
        request = client.build_request("POST", URL, content=b"{}", headers=JSON)
        request.headers["content-length"] = "9" * 4301
        try:
            resp = client.send(request)
        except httpx.HTTPError:  # the server may refuse the header itself
            return
    assert resp.status_code in (400, 413), resp.text
