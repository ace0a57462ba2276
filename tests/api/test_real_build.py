"""One real build through the master's API: settings -> POST /builds -> live log ->
image stored and active -> /boot/ipxe boots it."""

from __future__ import annotations

import time
from pathlib import Path

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
