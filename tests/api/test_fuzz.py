"""Property tests of the whole API from its own OpenAPI schema: no input gives a 5xx.

schemathesis generates requests for every operation (valid and invalid bodies, odd
parameters, with the admin token so the handlers run, not just the auth check) against a
real master on 127.0.0.1 that has one image and one registered node. The discovery route
is fuzzed once more with what schemathesis never sends: lone UTF-16 surrogates (in keys
too), numbers past Python's 4,300-digit limit, NaN and 1e400.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))
from store_helpers import write_image_dir

pytestmark = pytest.mark.integration

# Operations whose side effects would stop the fuzzing itself or take long on purpose.
SKIPPED = {("POST", "/api/v1/builds")}


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    write_image_dir(data / "images", "img-1")
    # no webhook deliveries: the webhooks it registers would point anywhere (tests send
    # traffic to 127.0.0.1 only)
    with master_process(data, fake_builds=True, env={"LIVESTRAP_WEBHOOK_WORKERS": "0"}) as m:
        with m.admin() as client:
            client.post("/api/v1/images/img-1/activate")
        yield m


def fuzz_operation(operation: Any, headers: dict[str, str]) -> None:
    """Generated requests for one operation; none may get a 5xx."""

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def no_5xx(case: Any) -> None:
        response = case.call(headers=headers, timeout=30)
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}"
        )

    no_5xx()


def test_no_server_errors(master: Master) -> None:
    schema = schemathesis.openapi.from_url(f"{master.url}/openapi.json")
    checked = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        discovery = operation.path.startswith("/api/v1/discovery")  # reports, action results
        token = master.discovery_token if discovery else master.admin_token
        fuzz_operation(operation, {"Authorization": f"Bearer {token}"})
        checked += 1
    assert checked >= 15


# -- discovery with what schemathesis does not send: lone surrogates, huge numbers ---------


class Literal(str):
    """A JSON number written as is: json.dumps cannot write ints past 4,300 digits."""


def dump(value: Any) -> str:
    """JSON text like json.dumps (ensure_ascii: a lone surrogate leaves as a \\udXXX
    escape; NaN as NaN), except that a Literal is written as is."""
    if isinstance(value, Literal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


TEXTS = st.text(
    st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)),
    max_size=12,
)
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**15, max_value=10**40),
    st.floats(),
    st.integers(min_value=4250, max_value=4400).map(lambda n: Literal("9" * n)),
    st.sampled_from([Literal("1e400"), Literal("-1e400"), Literal("-0"), Literal("1E-400")]),
)
VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXTS),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(TEXTS, kids, max_size=4)),
    max_leaves=16,
)
MACS = st.one_of(TEXTS, st.just("52:54:00:12:34:56"), st.just("52:54:00:12:34:57"))
FACTS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {
            "system": st.fixed_dictionaries({}, optional={"uuid": TEXTS, "vendor": VALUES}),
            "nics": st.lists(st.fixed_dictionaries({}, optional={"mac": MACS}), max_size=3),
        },
        optional={"extra": VALUES, "\ud800": VALUES},
    ),
)
REPORTS = st.fixed_dictionaries(
    {},
    optional={
        "agent_version": st.one_of(TEXTS, VALUES),
        "image_id": TEXTS,
        "boot_mac": MACS,
        "node_id": TEXTS,
        "facts_hash": TEXTS,
        "facts": FACTS,
        "failures": st.one_of(
            st.lists(st.fixed_dictionaries({"collector": TEXTS, "error": TEXTS}), max_size=2),
            VALUES,
        ),
        "uptime_s": st.one_of(NUMBERS, VALUES),
    },
)


@pytest.mark.security
def test_discovery_with_surrogates_and_huge_numbers(master: Master) -> None:
    """No report gives a 5xx, and every node it makes can be read back."""
    with master.discovery() as client, master.admin() as admin:

        @given(body=REPORTS)
        @settings(max_examples=150, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def no_5xx(body: dict[str, Any]) -> None:
            raw = dump(body).encode()
            resp = client.post(
                "/api/v1/discovery", content=raw, headers={"Content-Type": "application/json"}
            )
            assert resp.status_code < 500, f"{raw[:300]!r} -> {resp.status_code}: {resp.text}"
            if resp.status_code == 201:  # a new node: it must read back
                node_id = resp.json()["node_id"]
                shown = admin.get(f"/api/v1/nodes/{node_id}")
                assert shown.status_code == 200, shown.text
                assert admin.get(f"/api/v1/nodes/{node_id}/timeline").status_code == 200

        no_5xx()
        assert admin.get("/api/v1/nodes").status_code == 200
