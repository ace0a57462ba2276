"""Property tests of the whole API from its own OpenAPI schema: no input gives a 5xx.

schemathesis generates requests for every operation (valid and invalid bodies, odd
parameters, with the admin token so the handlers run, not just the auth check) against a
real master on 127.0.0.1 that has one image and one registered node.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

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
    with master_process(data, fake_builds=True) as m:
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
        discovery = operation.path == "/api/v1/discovery"
        token = master.discovery_token if discovery else master.admin_token
        fuzz_operation(operation, {"Authorization": f"Bearer {token}"})
        checked += 1
    assert checked >= 15
