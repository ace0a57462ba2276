"""The node page warns when the active image cannot drive one of the node's NICs or
storage controllers (or lacks its firmware); silent when it can, or cannot know."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driverkit import add_coverage, fixture_coverage
from fleet import machine_facts, report_body
from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import write_image_dir

pytestmark = pytest.mark.integration

ICE = "intel/ice/ddp/ice.pkg"


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    """A master whose active image records the fixture modules' coverage, and an image
    with the E810's firmware."""
    data = tmp_path_factory.mktemp("console-drivers") / "data"
    write_image_dir(data / "images", "img-1")
    add_coverage(data / "images" / "img-1")
    write_image_dir(data / "images", "img-fw")
    add_coverage(data / "images" / "img-fw", fixture_coverage({ICE}))
    (data / "active").symlink_to("images/img-1")
    with master_process(data, heartbeat_s=1) as m:
        yield m


def register(master: Master, n: int, pci: list[dict[str, Any]] | None = None) -> str:
    facts = machine_facts(n)
    if pci is not None:
        facts["pci"] = pci
    with master.discovery() as client:
        answer = client.post("/api/v1/discovery", json=report_body(facts, facts["nics"][0]["mac"]))
    assert answer.status_code in (200, 201), answer.text
    node_id: str = answer.json()["node_id"]
    return node_id


def gap_rows(html: str) -> list[list[str]]:
    section = re.search(r'<section id="driver-gaps">(.*?)</section>', html, re.S)
    if section is None:
        return []
    rows = re.findall(r"<tr><td.*?</tr>", section.group(1), re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
            for r in rows]  # fmt: skip


def test_node_page_warns_of_nics_without_firmware(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    node = register(master, 1)  # twelve E810-XXV (8086:159b): ice, which needs its DDP file
    page = client.get(f"/ui/nodes/{node}")
    assert page.status_code == 200, page.text
    assert "Devices the active image cannot drive" in page.text
    rows = gap_rows(page.text)
    assert len(rows) == 12
    assert rows[0] == ["0000:00:00.0", "8086:159b", "network controller", "no-firmware", "ice",
                       ICE]  # fmt: skip
    # the image with the E810's DDP package: no warning (the cache follows the active image)
    with master.admin() as admin:
        assert admin.post("/api/v1/images/img-fw/activate").status_code == 200
        try:
            assert 'id="driver-gaps"' not in client.get(f"/ui/nodes/{node}").text
        finally:
            assert admin.post("/api/v1/images/img-1/activate").status_code == 200
    assert len(gap_rows(client.get(f"/ui/nodes/{node}").text)) == 12


def test_no_warning_when_covered_or_not_known(
    master: Master, console: tuple[httpx.Client, str]
) -> None:
    client, _ = console
    x520 = [
        {"address": "0000:18:00.0", "class": "020000", "vendor": "8086", "device": "10fb"},
        {"address": "0000:03:00.0", "class": "030000", "vendor": "102b", "device": "0536"},
    ]
    covered = register(master, 2, x520)  # ixgbe; the VGA without a driver is no reason
    page = client.get(f"/ui/nodes/{covered}")
    assert page.status_code == 200 and 'id="driver-gaps"' not in page.text
    no_facts = register(master, 3, [])
    assert 'id="driver-gaps"' not in client.get(f"/ui/nodes/{no_facts}").text


def test_hostile_pci_facts_shown_as_text(master: Master, console: tuple[httpx.Client, str]) -> None:
    client, _ = console
    hostile = [
        {"address": "0000:3b:00.0", "class": "020000", "vendor": "8086", "device": "1592",
         "driver": "<script>alert(1)</script>", "device_name": "<img src=x onerror=alert(1)>"},
        {"address": "<script>", "class": "020000", "vendor": "8086", "device": "1592"},
    ]  # fmt: skip
    node = register(master, 4, hostile)
    page = client.get(f"/ui/nodes/{node}")
    rows = gap_rows(page.text)
    assert [r[:2] for r in rows] == [["0000:3b:00.0", "8086:1592"]]  # the bad address skipped
    assert "<script>alert(1)</script>" not in page.text
