"""The privilege split with real processes: a master with role "api" (never builds) and
`livestrap builder` processes (the fake stages) on the same data dir and database."""

from __future__ import annotations

import itertools
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_builds import FINISHED, SETTINGS, prepare_data, submit, ts, wait_for

from masterproc import Master, builder_process, master_process

pytestmark = pytest.mark.integration


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Master]:
    data = prepare_data(tmp_path / "data")
    with master_process(data, role="api") as m:
        with m.admin() as c:
            c.put("/api/v1/settings", json=SETTINGS).raise_for_status()
        yield m


def test_the_api_alone_queues_and_a_builder_builds(api: Master) -> None:
    with api.admin() as c:
        build_id = submit(c, activate=True)["id"]
        time.sleep(2)  # role "api" starts no worker: nothing takes it
        assert c.get(f"/api/v1/builds/{build_id}").json()["state"] == "queued"
        assert not (api.data_dir / "repo" / "dists").exists()  # nor publishes the agent
        with builder_process(api.data_dir, api.database_url):
            with c.stream("GET", f"/api/v1/builds/{build_id}/log") as resp:
                lines = list(resp.iter_lines())  # streamed through the API as it is written
            build = c.get(f"/api/v1/builds/{build_id}").json()
        assert build["state"] == "succeeded", build
        assert "=== stage prepare" in lines[0] and lines[-1].startswith("=== activated")
        listed = {i["id"]: i["active"] for i in c.get("/api/v1/images").json()}
        assert listed == {build["image_id"]: True}
    log = api.data_dir / "logs" / f"build-{build_id}.log"
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    image = api.data_dir / "images" / build["image_id"]
    assert stat.S_IMODE(image.stat().st_mode) & 0o050 == 0o050  # the group reads the image


def test_cancel_of_a_running_build_crosses_processes(api: Master) -> None:
    with api.admin() as c, builder_process(api.data_dir, api.database_url):
        build_id = submit(c, overrides={"packages": ["slow-me"]})["id"]
        wait_for(c, build_id, {"running", *FINISHED})
        asked = time.time()
        assert c.delete(f"/api/v1/builds/{build_id}").status_code == 202
        build = wait_for(c, build_id)
        assert build["state"] == "cancelled", build
        assert ts(build["finished"]) - asked < 3
        assert c.delete(f"/api/v1/builds/{build_id}").status_code == 409
    assert not list((api.data_dir / "images").glob("*"))
    assert not list((api.data_dir / "tmp").glob("build-*"))


def test_two_builders_never_run_the_same_build(api: Master) -> None:
    with api.admin() as c:
        ids = [submit(c)["id"] for _ in range(4)]
        with (
            builder_process(api.data_dir, api.database_url),
            builder_process(api.data_dir, api.database_url),
        ):
            builds = sorted((wait_for(c, i, timeout=40) for i in ids), key=lambda b: b["seq"])
    assert [b["state"] for b in builds] == ["succeeded"] * 4
    for build in builds:  # each ran once: one pipeline in its log
        text = (api.data_dir / "logs" / f"build-{build['id']}.log").read_text()
        assert text.count("=== stage prepare") == 1, text
    for before, after in itertools.pairwise(builds):  # one at a time, in order
        assert ts(before["finished"]) <= ts(after["started"]), (before, after)


def test_a_killed_builder_leaves_an_interrupted_build_after_its_restart(api: Master) -> None:
    with api.admin() as c:
        with builder_process(api.data_dir, api.database_url) as proc:
            build_id = submit(c, overrides={"packages": ["slow-me"]})["id"]
            queued_id = submit(c)["id"]
            wait_for(c, build_id, {"running"})
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        time.sleep(1)
        assert c.get(f"/api/v1/builds/{build_id}").json()["state"] == "running"  # nobody knows
        with builder_process(api.data_dir, api.database_url):
            build = wait_for(c, build_id)
            assert build["state"] == "interrupted", build
            assert "the builder stopped while this build was running" in build["error"]
            assert wait_for(c, queued_id)["state"] == "succeeded"  # the queue survived
        log = c.get(f"/api/v1/builds/{build_id}/log").text
        assert log.splitlines()[-1].startswith("=== build interrupted: the builder stopped")
    assert not list((api.data_dir / "tmp").glob("build-*"))  # the killed build's tree went


def test_a_sigterm_stops_the_builder_and_interrupts_its_build(api: Master) -> None:
    with api.admin() as c:
        with builder_process(api.data_dir, api.database_url) as proc:
            build_id = submit(c, overrides={"packages": ["slow-me"]})["id"]
            wait_for(c, build_id, {"running"})
            proc.terminate()
            assert proc.wait(timeout=20) == 0
        assert c.get(f"/api/v1/builds/{build_id}").json()["state"] == "interrupted"


def test_a_builder_waits_for_the_api_to_make_the_database(tmp_path: Path) -> None:
    data = prepare_data(tmp_path / "data")
    url = f"sqlite:///{data / 'livestrap.db'}"
    with builder_process(data, url) as proc:
        time.sleep(1.5)
        assert proc.poll() is None and not (data / "livestrap.db").exists()
        with master_process(data, role="api", database_url=url) as m, m.admin() as c:
            c.put("/api/v1/settings", json=SETTINGS).raise_for_status()
            assert wait_for(c, submit(c)["id"], timeout=20)["state"] == "succeeded"
