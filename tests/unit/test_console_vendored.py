"""The vendored htmx is the file VENDORED.md names, byte for byte, with its licence."""

from __future__ import annotations

import hashlib

import pytest

from livestrap.master.console.render import HERE, HTMX

pytestmark = pytest.mark.unit

HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


def test_htmx_is_the_released_file() -> None:
    data = (HERE / "static" / HTMX).read_bytes()
    assert hashlib.sha256(data).hexdigest() == HTMX_SHA256
    vendored = (HERE / "static" / "VENDORED.md").read_text()
    assert HTMX in vendored and HTMX_SHA256 in vendored
    assert "Zero-Clause BSD" in (HERE / "static" / "LICENSE.htmx").read_text()


def test_templates_escape_whatever_their_name() -> None:
    from livestrap.master.console.render import templates

    env = templates().env
    out = env.from_string("{{ v }}").render(v="<script>alert(1)</script>")
    assert out == "&lt;script&gt;alert(1)&lt;/script&gt;"
