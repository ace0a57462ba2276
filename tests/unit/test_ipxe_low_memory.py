"""The iPXE script for a known node with less RAM than the active image needs, and the
RAM a node's facts report."""

from __future__ import annotations

import pytest

from livestrap.master.ipxe import render_low_memory_script
from livestrap.master.services.boot_ram import reported_ram_mib

pytestmark = pytest.mark.unit

MIB = 1 << 20


def test_low_memory_script_exact() -> None:
    assert render_low_memory_script("http://10.0.0.1:8080/", "img-1", 271, 256, 30) == (
        "#!ipxe\n"
        "echo livestrap: image img-1 needs 271 MiB of RAM, this node has 256 MiB: "
        "not booting it; retrying in 30 s\n"
        "sleep 30\n"
        "chain --replace --autofree http://10.0.0.1:8080/boot/ipxe?mac=${net0/mac}\n"
    )


@pytest.mark.parametrize("image_id", ["a b", "x;shell", "${evil}"])
def test_low_memory_script_refuses_a_bad_image_id(image_id: str) -> None:
    with pytest.raises(ValueError, match="image id"):
        render_low_memory_script("http://10.0.0.1", image_id, 300, 200)


@pytest.mark.parametrize(
    ("facts", "mib"),
    [({"memory": {"total": 215822336, "dimms": [{"size": 256 * MIB}]}}, 256),
     ({"memory": {"total": 215822336, "dimms": [{"size": 128 * MIB}, {"size": 128 * MIB}]}}, 256),
     ({"memory": {"total": 215822336, "dimms": None}}, None),  # MemTotal alone: not held
     ({"memory": {"total": 215822336, "dimms": [{"size": None}]}}, None),
     ({"memory": {"total": None, "dimms": []}}, None),
     ({"memory": {"total": True}}, None),
     ({"memory": "lots"}, None),
     ({}, None),
     (None, None)],
)  # fmt: skip
def test_reported_ram(facts: object, mib: int | None) -> None:
    assert reported_ram_mib(facts) == mib  # type: ignore[arg-type]
