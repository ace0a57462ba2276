"""/api/v1/builds against a real master running the fake stages: the queue, cancel, logs
(live, replayed, SSE), restarts, and the `livestrap builds` CLI."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from livestrap.cli import app as cli_app
from masterproc import Master, master_process

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
FINISHED = {"succeeded", "failed", "cancelled", "interrupted"}
# Resolvable on any host: the fake stages download nothing.
SETTINGS = {"label": "api", "mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}


def prepare_data(data: Path) -> Path:
    (data / "spec").mkdir(parents=True)  # API specs name files in <data-dir>/spec only
    shutil.copy(FIXTURES / "keys/archive-test.asc", data / "spec/archive.asc")
    return data


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Master]:
    data = prepare_data(tmp_path_factory.mktemp("builds") / "data")
    with master_process(data) as m:
        with m.admin() as c:
            c.put("/api/v1/settings", json=SETTINGS).raise_for_status()
        yield m


@pytest.fixture
def client(master: Master) -> Iterator[httpx.Client]:
    with master.admin() as c:
        yield c


def submit(client: httpx.Client, **body: Any) -> dict[str, Any]:
    resp = client.post("/api/v1/builds", json=body)
    assert resp.status_code == 202, resp.text
    build: dict[str, Any] = resp.json()
    return build


def wait_for(
    client: httpx.Client, build_id: str, states: set[str] = FINISHED, timeout: float = 15
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        build: dict[str, Any] = client.get(f"/api/v1/builds/{build_id}").json()
        if build["state"] in states:
            return build
        assert time.monotonic() < deadline, f"build stuck in {build['state']}"
        time.sleep(0.02)


def ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def images(master: Master) -> set[str]:
    return {p.name for p in (master.data_dir / "images").glob("*")}


def test_admin_token_required(master: Master) -> None:
    with master.anonymous() as anon:
        for method, path in [
            ("GET", "/api/v1/builds"),
            ("POST", "/api/v1/builds"),
            ("GET", "/api/v1/builds/x"),
            ("GET", "/api/v1/builds/x/log"),
            ("DELETE", "/api/v1/builds/x"),
        ]:
            assert anon.request(method, path).status_code == 401, path


def test_unknown_build_is_404(client: httpx.Client) -> None:
    for method, path in [("GET", "/x"), ("GET", "/x/log"), ("DELETE", "/x")]:
        assert client.request(method, f"/api/v1/builds{path}").status_code == 404


def test_unique_id_prefix_names_a_build(master: Master, client: httpx.Client) -> None:
    build_id = wait_for(client, submit(client)["id"])["id"]
    prefix = build_id[:13]
    assert client.get(f"/api/v1/builds/{prefix}").json()["id"] == build_id
    assert "=== stage commit" in client.get(f"/api/v1/builds/{prefix}/log").text
    assert client.delete(f"/api/v1/builds/{prefix}").status_code == 409  # finished
    slow = submit(client, overrides={"packages": ["slow-me"]})["id"]
    resp = client.delete(f"/api/v1/builds/{slow[:13]}")
    assert resp.status_code == 202 and resp.json()["id"] == slow
    assert wait_for(client, slow)["state"] == "cancelled"


def test_ambiguous_build_prefix_is_409(master: Master, client: httpx.Client) -> None:
    from livestrap.master.models import Build

    ids = ["cafe0000-0000-4000-8000-000000000001", "cafe0000-0000-4000-8000-000000000002"]
    db = master.database()
    with db.session() as session:
        session.add_all(
            Build(id=i, seq=-n, state="failed", spec={}, log_path=str(master.data_dir / "x.log"),
                  created_at=time.time(), progress=0.0, activate=False, force=False,
                  reused=False)
            for n, i in enumerate(ids)
        )  # fmt: skip
    db.dispose()
    for method, path in [("GET", ""), ("GET", "/log"), ("DELETE", "")]:
        resp = client.request(method, f"/api/v1/builds/cafe{path}")
        assert resp.status_code == 409, resp.text
        assert resp.json()["detail"] == f"build id prefix 'cafe' is ambiguous: {', '.join(ids)}"
    assert client.get(f"/api/v1/builds/{ids[1][:-1]}2").json()["id"] == ids[1]
    assert client.get("/api/v1/builds/cafe1").status_code == 404


def test_build_succeeds_and_activates(master: Master, client: httpx.Client) -> None:
    started = submit(client, activate=True)
    assert started["state"] in ("queued", "running") and started["activate"] is True
    assert started["spec"]["suite"] == "bookworm"  # the full effective spec is stored
    build = wait_for(client, started["id"])
    assert build["state"] == "succeeded", build
    assert build["progress"] == 1.0 and build["error"] is None and build["reused"] is False
    image_id = build["image_id"]
    assert (master.data_dir / "images" / image_id / "metadata.yaml").is_file()
    assert (master.data_dir / "active").readlink() == Path("images") / image_id
    assert ts(build["created"]) <= ts(build["started"]) <= ts(build["finished"])
    assert build["log_url"] == f"/api/v1/builds/{build['id']}/log"
    listed = client.get("/api/v1/builds").json()
    assert listed[0]["id"] == build["id"]  # newest first
    assert [b["seq"] for b in listed] == sorted((b["seq"] for b in listed), reverse=True)


def test_failing_build_reports_its_error(master: Master, client: httpx.Client) -> None:
    before = images(master)
    build = wait_for(client, submit(client, overrides={"packages": ["fail-me"]})["id"])
    assert build["state"] == "failed" and build["stage"] == "rootfs"
    assert "not found in the configured repositories: fail-me" in build["error"]
    assert build["image_id"] is None and images(master) == before
    assert client.delete(f"/api/v1/builds/{build['id']}").status_code == 409


def test_bad_overrides_are_422(client: httpx.Client) -> None:
    resp = client.post("/api/v1/builds", json={"overrides": {"packages": ["Bad Name"]}})
    assert resp.status_code == 422 and "packages: malformed" in resp.json()["detail"]
    assert client.post("/api/v1/builds", json={"activate": "maybe"}).status_code == 422


def test_builds_run_one_at_a_time_in_order(client: httpx.Client) -> None:
    with ThreadPoolExecutor(3) as pool:
        ids = [b["id"] for b in pool.map(lambda _: submit(client), range(3))]
    builds = sorted((wait_for(client, i) for i in ids), key=lambda b: b["seq"])
    assert [b["state"] for b in builds] == ["succeeded"] * 3
    for before, after in itertools.pairwise(builds):
        assert ts(before["finished"]) <= ts(after["started"]), (before, after)


def test_cancel_running_build(master: Master, client: httpx.Client) -> None:
    before = images(master)
    build_id = submit(client, overrides={"packages": ["slow-me"]})["id"]
    wait_for(client, build_id, {"running", *FINISHED})
    asked = time.time()
    resp = client.delete(f"/api/v1/builds/{build_id}")
    assert resp.status_code == 202, resp.text
    build = wait_for(client, build_id)
    assert build["state"] == "cancelled", build
    assert ts(build["finished"]) - asked < 2
    assert images(master) == before
    assert not list((master.data_dir / "tmp").glob("build-*"))
    assert client.delete(f"/api/v1/builds/{build_id}").status_code == 409


def test_cancel_queued_build(client: httpx.Client) -> None:
    first = submit(client, overrides={"packages": ["slow-me"]})["id"]
    queued = submit(client)["id"]
    resp = client.delete(f"/api/v1/builds/{queued}")
    assert resp.status_code == 202 and resp.json()["state"] == "cancelled"
    assert wait_for(client, first)["state"] == "succeeded"
    build = client.get(f"/api/v1/builds/{queued}").json()
    assert build["state"] == "cancelled" and build["started"] is None


def test_log_follows_a_running_build(client: httpx.Client) -> None:
    build_id = submit(client)["id"]
    arrivals: list[tuple[float, str]] = []
    with client.stream("GET", f"/api/v1/builds/{build_id}/log") as resp:
        assert resp.headers["content-type"].startswith("text/plain")
        for line in resp.iter_lines():
            arrivals.append((time.time(), line))
    build = client.get(f"/api/v1/builds/{build_id}").json()
    assert build["state"] == "succeeded"  # the stream ended with the build
    lines = [line for _, line in arrivals]
    assert "=== stage prepare" in lines[0] and "=== built image" in lines[-1]
    assert arrivals[0][0] < ts(build["finished"]) - 0.2  # live, not all at the end
    replay = client.get(f"/api/v1/builds/{build_id}/log").text
    assert replay.splitlines() == lines
    assert client.get(f"/api/v1/builds/{build_id}/log", params={"follow": "false"}).text == replay


def test_log_as_server_sent_events(client: httpx.Client) -> None:
    build_id = submit(client, overrides={"packages": ["fail-me"]})["id"]
    headers = {"Accept": "text/event-stream"}
    with client.stream("GET", f"/api/v1/builds/{build_id}/log", headers=headers) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        events = [line for line in resp.iter_lines() if line]
    data = [e.removeprefix("data: ") for e in events[:-2]]
    assert all(e.startswith("data: ") for e in events[:-2])
    assert events[-2] == "event: end"
    assert json.loads(events[-1].removeprefix("data: "))["state"] == "failed"
    assert data == client.get(f"/api/v1/builds/{build_id}/log").text.splitlines()


def test_follow_without_follow_returns_now(client: httpx.Client) -> None:
    build_id = submit(client, overrides={"packages": ["slow-me"]})["id"]
    wait_for(client, build_id, {"running", *FINISHED})
    t0 = time.monotonic()
    client.get(f"/api/v1/builds/{build_id}/log", params={"follow": "false"})
    assert time.monotonic() - t0 < 0.5
    wait_for(client, build_id)


def test_cli_start_follow_list_show_log_cancel(master: Master) -> None:
    runner = CliRunner()
    env = {"LIVESTRAP_MASTER": master.url, "LIVESTRAP_TOKEN": master.admin_token}
    result = runner.invoke(cli_app, ["builds", "start", "--follow"], env=env)
    assert result.exit_code == 0, result.output
    build_id = result.output.splitlines()[0]
    assert "=== built image" in result.output
    result = runner.invoke(cli_app, ["builds", "list", "-o", "json"], env=env)
    assert json.loads(result.stdout)[0]["id"] == build_id
    result = runner.invoke(cli_app, ["builds", "list", "--json"], env=env)  # deprecated
    assert json.loads(result.stdout)[0]["id"] == build_id
    result = runner.invoke(cli_app, ["builds", "list", "-q"], env=env)
    assert result.stdout.splitlines()[0] == build_id
    result = runner.invoke(cli_app, ["builds", "show", build_id[:8], "-o", "json"], env=env)
    assert json.loads(result.stdout)["state"] == "succeeded"
    result = runner.invoke(cli_app, ["builds", "show", build_id[:8]], env=env)
    assert f"ID:        {build_id}" in result.stdout and "State:     succeeded" in result.stdout
    result = runner.invoke(cli_app, ["builds", "log", build_id[:8]], env=env)
    assert "=== stage commit" in result.output
    result = runner.invoke(cli_app, ["builds", "cancel", build_id], env=env)
    assert "409" in str(result.exception)


def test_restart_marks_the_running_build_interrupted(tmp_path: Path) -> None:
    data = prepare_data(tmp_path / "data")
    with master_process(data) as m, m.admin() as c:
        c.put("/api/v1/settings", json=SETTINGS).raise_for_status()
        build_id = submit(c, overrides={"packages": ["slow-me"]})["id"]
        queued_id = submit(c)["id"]
        wait_for(c, build_id, {"running"})
        m.proc.kill()
        m.proc.wait()
    with master_process(data) as m, m.admin() as c:
        build = c.get(f"/api/v1/builds/{build_id}").json()
        assert build["state"] == "interrupted" and "master stopped" in build["error"]
        assert build["finished"] is not None
        assert wait_for(c, queued_id)["state"] == "succeeded"  # queued in the database: it runs
        log = c.get(f"/api/v1/builds/{build_id}/log").text  # ends at once: it is finished
        assert log.splitlines()[-1].startswith("=== build interrupted: the master stopped")
        assert wait_for(c, submit(c)["id"])["state"] == "succeeded"  # builds again
    assert not list((data / "tmp").glob("build-*"))  # the killed build's tree was swept


def test_stop_interrupts_and_cleans_up(tmp_path: Path) -> None:
    data = prepare_data(tmp_path / "data")
    with master_process(data) as m, m.admin() as c:
        c.put("/api/v1/settings", json=SETTINGS).raise_for_status()
        build_id = submit(c, overrides={"packages": ["slow-me"]})["id"]
        wait_for(c, build_id, {"running"})
        m.proc.terminate()
        m.proc.wait(timeout=20)
    with master_process(data) as m, m.admin() as c:
        assert c.get(f"/api/v1/builds/{build_id}").json()["state"] == "interrupted"
    assert not list((data / "tmp").glob("build-*"))
    assert not list((data / "images").glob("*"))
