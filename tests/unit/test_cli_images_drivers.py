"""`livestrap images drivers`: the class summary and the check of lspci text from the
local store, and --node through the master (faked)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_master import FakeMaster, body
from fake_master import fake_master as fake_master
from store_helpers import write_image_dir
from typer.testing import CliRunner

from driverkit import FIXTURES, add_coverage, fixture_coverage
from livestrap.cli import app
from livestrap.lspci import parse_lspci
from livestrap.master.services.drivers import check_image
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    store = ImageStore(tmp_path / "data")
    write_image_dir(store.images_dir, "img-new")
    add_coverage(store.images_dir / "img-new")
    write_image_dir(store.images_dir, "img-old")  # built before coverage was recorded
    return store


def run(store: ImageStore, *args: str, stdin: str | None = None) -> Any:
    argv = ["images", "drivers", *args, "--data-dir", str(store.data_dir)]
    return CliRunner().invoke(app, argv, input=stdin)


def test_summary_table(store: ImageStore) -> None:
    result = run(store, "img-new")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["CLASS", "NAME", "MODULES", "PATTERNS", "VENDORS", "FIRMWARE",
                                "INCOMPLETE"]  # fmt: skip
    assert lines[1].split() == ["02", "network", "controller", "4", "122", "4", "2"]
    assert lines[2].split() == ["01", "storage", "controller", "2", "385", "42", "0"]
    assert "7 modules; 3 lack firmware files" in result.stderr


def test_summary_json_lists_missing_firmware(store: ImageStore) -> None:
    result = run(store, "img-new", "-o", "json")
    data = json.loads(result.stdout)
    assert data["missing_firmware"]["ice"] == ["intel/ice/ddp/ice.pkg"]
    assert data["missing_firmware"]["rp2"] == ["rp2.fw"]
    assert [c["base_class"] for c in data["classes"]] == ["02", "01", None]


@pytest.mark.parametrize("form", ["server.lspci-n", "server.lspci-nn", "server.lspci-mm-n"])
def test_pci_check_names_the_gaps_nics_first(store: ImageStore, form: str) -> None:
    result = run(store, "img-n", "--pci", str(FIXTURES / form))  # a prefix
    assert result.exit_code == 1  # NICs the image cannot drive
    rows = [line.split()[:2] for line in result.stdout.splitlines()[1:]]
    slots = [slot.removeprefix("0000:") for slot, _ in rows]
    assert slots == ["3b:00.0", "3b:00.1", "86:00.0", "03:00.0", "00:00.0", "00:1c.0", "00:08.0"]
    assert "intel/ice/ddp/ice.pkg" in result.stdout
    assert "14 devices, 7 not covered" in result.stderr
    assert "cannot drive 3 NIC(s) or storage controller(s)" in str(result.exception)


def test_pci_from_stdin_json_has_every_device(store: ImageStore) -> None:
    text = (FIXTURES / "server.lspci-nvmm").read_text()
    result = run(store, "img-new", "--pci", "-", "-o", "json", stdin=text)
    data = json.loads(result.stdout)
    assert [d["status"] for d in data["devices"]] == ["no-firmware", "no-firmware", "ok", "ok"]
    assert data["gaps"] == 2 and data["important_gaps"] == 2
    meta = store.get("img-new")
    assert data == json.loads(check_image(meta, parse_lspci(text)).model_dump_json())


def test_all_covered_exits_0(store: ImageStore) -> None:
    bnx2x = {
        f"bnx2x/bnx2x-{c}-{v}.fw" for v in ("7.13.15.0", "7.13.21.0") for c in ("e2", "e1h", "e1")
    }
    add_coverage(store.images_dir / "img-new", fixture_coverage({"intel/ice/ddp/ice.pkg", *bnx2x}))
    result = run(store, "img-new", "--pci", str(FIXTURES / "server.lspci-n"), "-o", "value")
    assert result.exit_code == 0, result.output
    assert result.stdout.split() == ["03:00.0", "00:00.0", "00:1c.0", "00:08.0"]


def test_refusals(store: ImageStore, tmp_path: Path) -> None:
    old = run(store, "img-old")
    assert "built before images recorded their driver coverage" in str(old.exception)
    (tmp_path / "bad.txt").write_text("00:19.0 0200: 8086:1502\nnot lspci\n")
    bad = run(store, "img-new", "--pci", str(tmp_path / "bad.txt"))
    assert "line 2 is not lspci output" in str(bad.exception)
    missing = run(store, "img-new", "--pci", str(tmp_path / "none.txt"))
    assert "cannot read" in str(missing.exception)
    both = run(store, "img-new", "--pci", "-", "--node", "abc")
    assert "not both" in str(both.exception)


def test_node_asks_the_master(store: ImageStore, fake_master: FakeMaster) -> None:
    meta = store.get("img-new")
    facts = [{"address": "0000:86:00.0", "class": "020000", "vendor": "14e4", "device": "168e"}]
    from livestrap.lspci import devices_from_facts

    answer = check_image(meta, devices_from_facts(facts)).model_dump(mode="json")
    path = "/api/v1/images/img-new/drivers/check"
    fake_master.routes[f"POST {path}"] = lambda request: answer
    result = run(store, "img-new", "--node", "4c4c", "--master", "http://m.test:8080")
    assert fake_master.paths() == [f"POST {path}"]
    assert body(fake_master.requests[0]) == {"node": "4c4c"}
    assert result.exit_code == 1
    assert result.stdout.splitlines()[1].split()[:4] == ["0000:86:00.0", "14e4:168e", "network",
                                                         "controller"]  # fmt: skip


def test_nodes_show_names_the_driver_gaps() -> None:
    from livestrap.cli.describe import describe_node

    gap = {"slot": "0000:3b:00.0", "ids": "8086:1592", "class_name": "network controller",
           "status": "no-firmware", "missing_firmware": ["intel/ice/ddp/ice.pkg"]}  # fmt: skip
    node = {"id": "n1", "facts": {}, "failures": [], "driver_gaps": [gap, "junk"]}
    lines = describe_node(node, now=0)
    at = lines.index("Not driven by the active image:")
    assert lines[at + 1 : at + 3] == [
        "  SLOT          IDS        CLASS               PROBLEM      MISSING FIRMWARE",
        "  0000:3b:00.0  8086:1592  network controller  no-firmware  intel/ice/ddp/ice.pkg",
    ]
    for quiet in ([], None):  # none, or not known: nothing said
        assert "Not driven by the active image:" not in describe_node(
            {**node, "driver_gaps": quiet}, now=0
        )
