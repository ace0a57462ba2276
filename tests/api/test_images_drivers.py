"""/api/v1/images/{id}/drivers, .../drivers/check and the node's `driver_gaps`, against
a real master: an image with the fixture modules' coverage, one built before it."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from driverkit import FIXTURES, add_coverage
from livestrap.agent.report import facts_hash
from masterproc import Master, master_process

sys.path.insert(0, str(Path(__file__).parent.parent / "unit"))

from store_helpers import write_image_dir

pytestmark = pytest.mark.integration

NEW, OLD = "img-new", "img-old"
ICE = "intel/ice/ddp/ice.pkg"
PCI = [  # as agent.collect.collect_pci reports them (sysfs ids)
    {"address": "0000:18:00.0", "class": "020000", "vendor": "8086", "device": "10fb",
     "subsystem_vendor": "8086", "subsystem_device": "000c", "driver": "ixgbe"},
    {"address": "0000:3b:00.0", "class": "020000", "vendor": "8086", "device": "1592",
     "subsystem_vendor": "8086", "subsystem_device": "0002", "driver": "ice"},
    {"address": "0000:af:00.0", "class": "010802", "vendor": "144d", "device": "a808"},
    {"address": "0000:04:00.0", "class": "010400", "vendor": "1000", "device": "0016",
     "driver": "megaraid_sas"},  # not among the fixture modules: no driver
    {"address": "0000:03:00.0", "class": "030000", "vendor": "102b", "device": "0536"},
    {"address": "0000:00:08.0", "class": "088000", "vendor": "8086", "device": "2014",
     "vendor_name": "<b>Intel</b>"},
]  # fmt: skip


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = tmp_path_factory.mktemp("drivers") / "data"
    write_image_dir(data / "images", NEW)
    add_coverage(data / "images" / NEW)
    write_image_dir(data / "images", OLD)
    with master_process(data, heartbeat_s=1) as m:
        yield m


@pytest.fixture(scope="module")
def admin(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as client:
        yield client


def register(master: Master, pci: Any) -> str:
    facts = {
        "system": {"vendor": "Dell Inc.", "product": "PowerEdge R640", "uuid": str(uuid.uuid4())},
        "nics": [{"name": "eno1", "mac": f"b8:ca:3a:00:{uuid.uuid4().hex[:2]}:01"}],
        "pci": pci,
    }
    payload = {"agent_version": "0.1.0", "image_id": NEW, "boot_mac": facts["nics"][0]["mac"],
               "facts_hash": facts_hash(facts), "facts": facts, "failures": []}  # fmt: skip
    with master.discovery() as client:
        resp = client.post("/api/v1/discovery", json=payload)
    assert resp.status_code in (200, 201), resp.text
    node_id: str = resp.json()["node_id"]
    return node_id


def activate(admin: httpx.Client, image_id: str) -> None:
    assert admin.post(f"/api/v1/images/{image_id}/activate").status_code == 200


def test_admin_token_required(master: Master) -> None:
    with master.anonymous() as anon:
        assert anon.get(f"/api/v1/images/{NEW}/drivers").status_code == 401
        check = anon.post(f"/api/v1/images/{NEW}/drivers/check", json={"lspci": ""})
        assert check.status_code == 401


def test_classes(admin: httpx.Client) -> None:
    resp = admin.get("/api/v1/images/img-n/drivers")  # a prefix
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["image"] == NEW and data["modules"] == 7
    assert [(c["base_class"], c["modules"]) for c in data["classes"]] == [
        ("02", 4), ("01", 2), (None, 1),
    ]  # fmt: skip
    assert data["missing_firmware"]["ice"] == [ICE]


def test_old_image_and_unknown(admin: httpx.Client) -> None:
    old = admin.get(f"/api/v1/images/{OLD}/drivers")
    assert old.status_code == 409 and "rebuild it" in old.json()["detail"]
    assert admin.get("/api/v1/images/nope/drivers").status_code == 404


def test_check_lspci(admin: httpx.Client) -> None:
    text = (FIXTURES / "server.lspci-nn").read_text()
    resp = admin.post(f"/api/v1/images/{NEW}/drivers/check", json={"lspci": text})
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["gaps"] == 7 and data["important_gaps"] == 3
    first = data["devices"][0]
    assert first == {"slot": "0000:18:00.0", "ids": "8086:10fb", "class_code": "0200",
                     "class_name": "network controller", "status": "ok", "important": True,
                     "modules": ["ixgbe"], "missing_firmware": []}  # fmt: skip
    ice = data["devices"][2]
    assert (ice["ids"], ice["status"], ice["missing_firmware"]) == (
        "8086:1592",
        "no-firmware",
        [ICE],
    )


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"lspci": "00:19.0 0200: 8086:1502\n<script>"}, "line 2 is not lspci output"),
        ({"lspci": "x", "node": "y"}, "exactly one"),
        ({}, "exactly one"),
        ({"lspci": "x" * (2 << 20)}, "at most"),
    ],
)
def test_check_refusals(admin: httpx.Client, body: dict[str, Any], words: str) -> None:
    resp = admin.post(f"/api/v1/images/{NEW}/drivers/check", json=body)
    assert resp.status_code in (413, 422), resp.text
    if resp.status_code == 422:
        assert words in resp.text


def test_check_node_and_its_gaps(master: Master, admin: httpx.Client) -> None:
    node = register(master, PCI)
    resp = admin.post(f"/api/v1/images/{NEW}/drivers/check", json={"node": node[:8]})
    assert resp.status_code == 200, resp.text
    statuses = [(d["slot"], d["status"]) for d in resp.json()["devices"]]
    assert statuses == [
        ("0000:18:00.0", "ok"), ("0000:3b:00.0", "no-firmware"), ("0000:04:00.0", "no-driver"),
        ("0000:af:00.0", "ok"), ("0000:03:00.0", "no-driver"), ("0000:00:08.0", "no-driver"),
    ]  # fmt: skip
    missing = admin.post(f"/api/v1/images/{NEW}/drivers/check", json={"node": "ffffffff"})
    assert missing.status_code == 404

    # no active image: nothing to say
    assert admin.get(f"/api/v1/nodes/{node}").json()["driver_gaps"] is None
    activate(admin, NEW)
    gaps = admin.get(f"/api/v1/nodes/{node}").json()["driver_gaps"]
    # only NICs and storage controllers: the VGA and the Ubox are no reason to warn
    assert [(g["slot"], g["status"], g["missing_firmware"]) for g in gaps] == [
        ("0000:3b:00.0", "no-firmware", [ICE]), ("0000:04:00.0", "no-driver", []),
    ]  # fmt: skip
    patched = admin.patch(f"/api/v1/nodes/{node}", json={"tags": ["rack1"]})
    assert patched.status_code == 200 and len(patched.json()["driver_gaps"]) == 2
    activate(admin, OLD)  # built before coverage: not known
    assert admin.get(f"/api/v1/nodes/{node}").json()["driver_gaps"] is None
    activate(admin, NEW)


def test_a_node_without_pci_facts_or_with_hostile_ones(master: Master, admin: httpx.Client) -> None:
    activate(admin, NEW)
    none = register(master, None)
    assert admin.get(f"/api/v1/nodes/{none}").json()["driver_gaps"] is None
    odd = register(master, [{"address": "x"}, "y", {"address": "0000:01:00.0", "class": "zz"}])
    assert admin.get(f"/api/v1/nodes/{odd}").json()["driver_gaps"] == []
