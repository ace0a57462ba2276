"""`livestrap nodes list|timeline` follow the master's pages (X-Next-Cursor)."""

from __future__ import annotations

import httpx
import pytest

from livestrap.cli.client import MasterError, call_pages

pytestmark = [pytest.mark.unit, pytest.mark.security]


def paged_master(rows: list[int], size: int) -> httpx.Client:
    seen: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        after = request.url.params.get("after")
        seen.append(after)
        start = int(after) if after else 0
        page = rows[start : start + size]
        headers = {"X-Next-Cursor": str(start + size)} if start + size < len(rows) else {}
        return httpx.Response(200, json=page, headers=headers)

    client = httpx.Client(base_url="http://master", transport=httpx.MockTransport(handler))
    client.seen = seen  # type: ignore[attr-defined]
    return client


def test_every_page_is_fetched_in_order_with_the_filters_kept() -> None:
    client = paged_master(list(range(2500)), 1000)
    assert call_pages(client, "/api/v1/nodes", {"status": "online"}) == list(range(2500))
    assert client.seen == [None, "1000", "2000"]  # type: ignore[attr-defined]


def test_a_refused_page_is_a_master_error() -> None:
    client = httpx.Client(
        base_url="http://master",
        transport=httpx.MockTransport(lambda r: httpx.Response(429, json={"detail": "slow"})),
    )
    with pytest.raises(MasterError, match="429: slow"):
        call_pages(client, "/api/v1/nodes")
