"""One real build through the master's API: settings -> POST /builds -> live log ->
image stored and active -> /boot/ipxe boots it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from helpers import TEST_CACHE, require_build_tools
from masterproc import PG_ADMIN_URL, master_process

pytestmark = pytest.mark.integration


def test_real_build_through_the_api(tmp_path: Path) -> None:
    require_build_tools()
    if PG_ADMIN_URL:
        pytest.skip("the real build runs once, in the SQLite pass")
    with (
        master_process(tmp_path / "data", fake_builds=False, cache_dir=TEST_CACHE) as master,
        master.admin() as client,
    ):
        spec = {"label": "apibuild", "packages": ["jq"], "kernel_options": ["quiet"]}
        assert client.put("/api/v1/settings", json=spec).status_code == 200
        build = client.post("/api/v1/builds", json={"activate": True}).json()
        seen_stages = set()
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            state = client.get(f"/api/v1/builds/{build['id']}").json()
            seen_stages.add(state["stage"])
            if state["state"] not in ("queued", "running"):
                break
            time.sleep(2)
        assert state["state"] == "succeeded", state
        assert {"rootfs", "squashfs"} <= seen_stages
        log = client.get(f"/api/v1/builds/{build['id']}/log").text
        assert "=== stage squashfs" in log and "=== built image" in log
        image = client.get(f"/api/v1/images/{state['image_id']}").json()
        assert image["active"] is True and image["label"] == "apibuild"
        assert "jq" in image["packages"] and image["agent_version"]
        script = client.get("/boot/ipxe", params={"mac": "52:54:00:00:00:01"}).text
        assert f"livestrap.image={state['image_id']}" in script and " quiet" in script
        _check_sbom(client, state["image_id"])


def _check_sbom(client: httpx.Client, image_id: str) -> None:
    """The SBOM (helper B2) credits the agent to the master's repository, jq to the
    mirror; `verify` finds every artifact as metadata.yaml says."""
    answer = client.get(f"/api/v1/images/{image_id}/sbom")
    assert answer.status_code == 200
    comps = {c["name"]: c for c in answer.json()["components"]}
    props = {n: {p["name"]: p["value"] for p in c["properties"]} for n, c in comps.items()}
    agent = props["livestrap-agent"]
    assert agent["livestrap:archive:uri"].startswith("copy://")
    assert agent["livestrap:archive:suite"] == "livestrap"
    assert props["jq"]["livestrap:archive:origin"] == "Debian"
    verified = client.post(f"/api/v1/images/{image_id}/verify").json()
    assert verified["ok"] is True and verified["files"]["sbom.cdx.json"] == "ok"
