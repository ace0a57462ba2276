"""The pure parts of the master's input limits: body caps as ASGI middleware, byte-count
settings, report bounds, text that JSON can carry, disk-full detection, Range positions,
refusal hints from a prefix, and nginx's size syntax."""

from __future__ import annotations

import errno
import json
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy.exc import OperationalError

from livestrap.errors import OptionError, StoreError
from livestrap.master.artifacts import RangeNotSatisfiable, parse_range
from livestrap.master.config import MAX_IMPORT_BYTES, MasterSettings
from livestrap.master.config_load import load_settings
from livestrap.master.errors import disk_full, nul_refused
from livestrap.master.limits import BodyLimit, Cap
from livestrap.master.routes.discovery import _hints
from livestrap.master.schemas.bounds import check_bounds, no_nul, text_safe
from livestrap.netboot.nginx import NginxOptions, check_options, nginx_size, render_nginx_config

pytestmark = [pytest.mark.unit, pytest.mark.security]


async def echo_app(scope: Any, receive: Any, send: Any) -> None:
    """Reads the whole body, then answers its length."""
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": str(size).encode()})


def run(
    app: Any, chunks: list[bytes], headers: list[tuple[bytes, bytes]] | None = None, **scope: Any
) -> tuple[int, bytes, int]:
    """(status, body, bytes pulled) of one request through `app`."""
    pending, pulled, out = list(chunks), [0], {"status": 0, "body": b""}

    async def receive() -> dict[str, Any]:
        chunk = pending.pop(0)
        pulled[0] += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] += message.get("body", b"")

    full = {"type": "http", "method": "POST", "path": "/x", "headers": headers or [], **scope}
    anyio.run(app, full, receive, send)
    return int(out["status"]), bytes(out["body"]), pulled[0]


LIMITED = BodyLimit(echo_app, Cap(10, "SMALL"), {("POST", "/big"): Cap(100, "BIG")})


def test_body_under_the_cap_passes() -> None:
    assert run(LIMITED, [b"12345", b"67890"]) == (200, b"10", 10)


def test_chunked_body_over_the_cap_is_cut_off() -> None:
    status, body, pulled = run(LIMITED, [b"123456", b"789012", b"x" * 1000])
    assert status == 413 and pulled == 12
    assert json.loads(body) == {"detail": "request body over 10 bytes (the master's SMALL)"}


@pytest.mark.parametrize("length", [b"11", b"9" * 4301, b"00000000000000000000011"])
def test_declared_length_over_the_cap_reads_nothing(length: bytes) -> None:
    status, _, pulled = run(LIMITED, [b"x" * 11], [(b"content-length", length)])
    assert (status, pulled) == (413, 0)


def test_route_cap() -> None:
    assert run(LIMITED, [b"x" * 100], path="/big")[0] == 200
    assert run(LIMITED, [b"x" * 101], path="/big")[0] == 413
    assert run(LIMITED, [b"x" * 11], path="/big", method="PUT")[0] == 413


def test_prefix_cap() -> None:
    app = BodyLimit(echo_app, Cap(10, "SMALL"), {}, {("PUT", "/files/"): Cap(50, "FILES")})
    assert run(app, [b"x" * 50], path="/files/keys/a.gpg", method="PUT")[0] == 200
    assert run(app, [b"x" * 51], path="/files/keys/a.gpg", method="PUT")[0] == 413
    assert run(app, [b"x" * 11], path="/files/keys/a.gpg")[0] == 413  # POST: the default


def test_env_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVESTRAP_MAX_BODY_BYTES", "2048")
    monkeypatch.delenv("LIVESTRAP_MAX_IMPORT_BYTES", raising=False)
    cfg = MasterSettings(data_dir=Path("/nonexistent"))
    assert (cfg.max_body_bytes, cfg.max_import_bytes) == (2048, MAX_IMPORT_BYTES)
    monkeypatch.setenv("LIVESTRAP_MAX_IMPORT_BYTES", "2G")
    assert MasterSettings().max_import_bytes == 2 << 30
    for bad in ("0", "-1", "1x", "1.5M", "²", "9" * 4301):
        monkeypatch.setenv("LIVESTRAP_MAX_BODY_BYTES", bad)
        with pytest.raises(OptionError, match=r"max_body_bytes: .*LIVESTRAP_MAX_BODY_BYTES"):
            load_settings()


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def test_check_bounds() -> None:
    check_bounds({"a": nested(31)})  # 32 containers
    with pytest.raises(ValueError, match="nested deeper than 32"):
        check_bounds({"a": nested(32)})
    check_bounds(nested(100_000), max_depth=200_000, max_items=200_000)  # no recursion
    check_bounds([0] * 9, max_items=10)
    with pytest.raises(ValueError, match="more than 10 values"):
        check_bounds([0] * 10, max_items=10)
    for bad in ({"k": "\ud800"}, {"\udfff": 1}, ["ok", ["x\udc00"]]):
        with pytest.raises(ValueError, match="surrogate"):
            check_bounds(bad)
    check_bounds({"emoji": "\U0001f600", "é": "ü"})


def test_text_safe() -> None:
    assert text_safe({"a\ud800": ["\udfffb", 1, None], "ok": "é"}) == {
        "a\ufffd": ["\ufffdb", 1, None],
        "ok": "é",
    }


def test_disk_full_sees_through_from_none() -> None:
    def store_error() -> StoreError:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as err:
            try:
                raise StoreError(f"cannot write x: {err.strerror}") from None
            except StoreError as wrapped:
                return wrapped

    assert disk_full(store_error())
    assert disk_full(OSError(errno.EDQUOT, "quota"))
    sqlite_full = OperationalError(
        "INSERT", {}, sqlite3.OperationalError("database or disk is full")
    )
    assert disk_full(sqlite_full)
    assert not disk_full(OSError(errno.EACCES, "denied"))
    assert not disk_full(OperationalError("SELECT", {}, sqlite3.OperationalError("locked")))
    assert not disk_full(StoreError("image x already exists"))


def test_range_positions_of_any_length() -> None:
    huge = "9" * 5000
    with pytest.raises(RangeNotSatisfiable):
        parse_range(f"bytes={huge}-", 100)
    assert parse_range(f"bytes=10-{huge}", 100) == (10, 99)
    assert parse_range(f"bytes=-{huge}", 100) == (0, 99)
    assert parse_range(f"bytes={'0' * 5000}7-{'0' * 5000}9", 100) == (7, 9)
    assert parse_range(f"bytes={huge}-5", 100) is None  # backwards: ignored


def test_hints_from_a_prefix() -> None:
    body = json.dumps(
        {"image_id": "img-1", "boot_mac": "52-54-00-AA-00-01", "facts": {"x": "y" * 10_000}}
    ).encode()
    assert _hints(body[:200]) == ("52:54:00:aa:00:01", "img-1")
    assert _hints(b'{"boot_mac": "52:54:00:aa:00:01", "image_id": "bad\\nid"') == (
        "52:54:00:aa:00:01",
        None,
    )
    assert _hints(b'{"boot_mac": 5, "image_id": "\\ud800"}') == (None, None)
    assert _hints(b"\xff" * 100) == (None, None)


def test_nginx_sizes() -> None:
    assert [nginx_size(n) for n in (1 << 20, 8 << 30, 3 << 10, 1000, 1536 << 10)] == [
        "1m",
        "8g",
        "3k",
        "1000",
        "1536k",
    ]


def test_nginx_config_carries_other_caps() -> None:
    opts = NginxOptions(images_dir="/srv/images", max_body_bytes=2 << 20, max_import_bytes=1 << 40)
    text = render_nginx_config(opts)
    assert "    client_max_body_size 2m;  # the master's LIVESTRAP_MAX_BODY_BYTES\n" in text
    # the import limit plus the multipart framing the master allows too
    assert (
        "    location = /api/v1/images/import {\n        client_max_body_size 1048577m;\n" in text
    )
    assert "client_max_body_size 0" not in text
    assert check_options(NginxOptions(images_dir="/srv/images", max_body_bytes=0)) == [
        "max_body_bytes: expected a positive number of bytes"
    ]


def test_a_nul_the_driver_refuses_is_the_clients_error() -> None:
    import psycopg
    from sqlalchemy.exc import DataError

    refused = psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
    assert nul_refused(DataError("SELECT", {}, refused))
    assert not nul_refused(DataError("SELECT", {}, psycopg.DataError("value too long")))
    assert not nul_refused(ValueError("NUL (0x00)"))


def test_text_refuses_nul() -> None:
    assert no_nul("ok") == "ok"
    with pytest.raises(ValueError, match="NUL"):
        no_nul("a\x00b")
