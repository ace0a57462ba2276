"""One request/error path for every client command: a one-off call, a paged list and a
streamed build log all say a master that cannot be reached, or refuses, the same way."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from livestrap.cli.builds_cmd import stream_log
from livestrap.cli.client import MasterError, call, call_pages

pytestmark = pytest.mark.unit

ASKS: dict[str, Callable[[httpx.Client], object]] = {
    "call": lambda c: call(c, "GET", "/api/v1/builds/b-1"),
    "pages": lambda c: call_pages(c, "/api/v1/builds/b-1"),
    "log": lambda c: stream_log(c, "b-1", follow=False),
}


def master(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="http://master", transport=httpx.MockTransport(handler))


def unreachable(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.parametrize("ask", ASKS)
def test_an_unreachable_master_is_one_master_error(ask: str) -> None:
    with pytest.raises(MasterError, match=r"^cannot reach the master at http://master: conn"):
        ASKS[ask](master(unreachable))


@pytest.mark.parametrize("ask", ASKS)
def test_a_refusal_carries_the_masters_detail(ask: str) -> None:
    client = master(lambda r: httpx.Response(404, json={"detail": "no build b-1"}))
    with pytest.raises(MasterError, match=r"^GET /api/v1/builds/b-1(/log)?: 404: no build b-1$"):
        ASKS[ask](client)
