"""/ui/builds against a real master running the fake stages: start (overrides, activate),
the history with outcomes and failing stages, the live log over SSE, cancel, CSRF."""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from masterproc import Master

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).parent.parent / "fixtures"
FINISHED = {"succeeded", "failed", "cancelled", "interrupted"}
# Resolvable on any host: the fake stages download nothing.
SETTINGS = {"label": "console", "mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}
Console = tuple[httpx.Client, str]


@pytest.fixture(scope="module", autouse=True)
def stored_settings(master: Master) -> None:
    (master.data_dir / "spec").mkdir(exist_ok=True)
    shutil.copy(FIXTURES / "keys/archive-test.asc", master.data_dir / "spec/archive.asc")
    with master.admin() as admin:
        admin.put("/api/v1/settings", json=SETTINGS).raise_for_status()


def api_build(master: Master, build_id: str) -> dict[str, Any]:
    with master.admin() as admin:
        return cast(
            dict[str, Any], admin.get(f"/api/v1/builds/{build_id}").raise_for_status().json()
        )


def wait_for(
    master: Master, build_id: str, states: set[str] = FINISHED, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while (build := api_build(master, build_id))["state"] not in states:
        assert time.monotonic() < deadline, f"build stuck in {build['state']}"
        time.sleep(0.05)
    return build


def build_count(master: Master) -> int:
    with master.admin() as admin:
        return len(admin.get("/api/v1/builds").json())


def start(console: Console, overrides: str = "", activate: bool = False) -> str:
    client, token = console
    form = {"csrf_token": token, "overrides": overrides}
    if activate:
        form["activate"] = "on"
    answer = client.post("/ui/builds", data=form)
    assert answer.status_code == 303, answer.text
    found = re.fullmatch(r"/ui/builds/([0-9a-f-]{36})", answer.headers["location"])
    assert found, answer.headers["location"]
    return found[1]


def row_of(page: str, build_id: str) -> str:
    """The history's <tr> for one build."""
    found = re.search(rf'<tr class="build"[^>]*>(?:(?!</tr>).)*{build_id}(?:(?!</tr>).)*</tr>',
                      page, re.S)  # fmt: skip
    assert found, f"no row for {build_id}"
    return found[0]


def sse_events(client: httpx.Client, build_id: str) -> list[tuple[str, str, float]]:
    """Every event of the build's log stream: (event, data, when it arrived)."""
    events, kind, data = [], "message", []
    with client.stream("GET", f"/ui/builds/{build_id}/log") as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        for line in answer.iter_lines():
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                data.append(line.removeprefix("data: "))
            elif line == "":
                events.append((kind, "\n".join(data), time.monotonic()))
                kind, data = "message", []
    return events


def test_the_builds_page_has_the_start_form(console: Console) -> None:
    client, _ = console
    page = client.get("/ui/builds")
    assert page.status_code == 200
    for part in ('form id="start-build"', 'textarea id="overrides" name="overrides"',
                 'type="checkbox" id="activate" name="activate"', 'id="start"',
                 'table id="builds"'):  # fmt: skip
        assert part in page.text


def test_start_a_build_of_the_settings(master: Master, console: Console) -> None:
    client, _ = console
    build_id = start(console)
    build = wait_for(master, build_id)
    assert build["state"] == "succeeded" and not build["activate"]
    assert build["spec"]["label"] == "console" and build["spec"]["packages"] == []
    page = client.get(f"/ui/builds/{build_id}")
    assert page.status_code == 200
    assert '<span id="build-state" class="badge succeeded">succeeded</span>' in page.text
    assert 'id="build-stage">commit<' in page.text
    assert '<progress id="build-progress" max="1" value="1.0">' in page.text
    assert f'data-log-url="/ui/builds/{build_id}/log"' in page.text
    assert '<script src="/ui/static/builds.js" defer></script>' in page.text
    assert f'href="/ui/images/{build["image_id"]}"' in page.text
    assert 'id="cancel"' not in page.text  # finished: nothing to cancel
    assert "hx-trigger" not in page.text  # and nothing to poll


def test_overrides_and_activate(master: Master, console: Console) -> None:
    build_id = start(console, "label: tuned\npackages: [htop]\n", activate=True)
    build = wait_for(master, build_id)
    assert build["state"] == "succeeded" and build["activate"]
    assert build["spec"]["label"] == "tuned" and build["spec"]["packages"] == ["htop"]
    assert build["spec"]["mirror"] == SETTINGS["mirror"]  # the rest from the settings
    with master.admin() as admin:
        assert admin.get(f"/api/v1/images/{build['image_id']}").json()["active"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ("packages: [htop\n", "<strong class=\"field\">packages</strong>: expected ',' or ']'"),
        ("packages:\n  - 7\n", '<strong class="field">packages.0</strong>: got the number 7'),
        ("bogus: 1\n", '<strong class="field">bogus</strong>: unknown key'),
        ("- htop\n", '<strong class="field">overrides</strong>: Input should be a valid'),
        ("a: &x [1]\nb: *x\n", "anchors and aliases"),
    ],
)
def test_bad_overrides_are_refused_on_the_form(
    master: Master, console: Console, overrides: str, expected: str
) -> None:
    client, token = console
    before = build_count(master)
    form = {"csrf_token": token, "overrides": overrides, "activate": "on"}
    answer = client.post("/ui/builds", data=form)
    assert answer.status_code == 422
    errors = answer.text.split('<ul id="spec-errors"', 1)[1].split("</ul>", 1)[0]
    assert html.unescape(expected) in html.unescape(errors)
    assert f">{html.escape(overrides, quote=False)}</textarea>" in answer.text  # as typed
    assert 'id="activate" name="activate" checked' in answer.text
    assert build_count(master) == before


def test_history_shows_outcomes_and_the_failing_stage(master: Master, console: Console) -> None:
    client, _ = console
    good, bad = start(console), start(console, "packages: [fail-me]")
    image_id = wait_for(master, good)["image_id"]
    failed = wait_for(master, bad)
    assert failed["state"] == "failed" and failed["stage"] == "rootfs"
    page = client.get("/ui/builds").text
    good_row, bad_row = row_of(page, good), row_of(page, bad)
    assert '<span class="badge succeeded">succeeded</span>' in good_row
    assert f'<a class="image-link" href="/ui/images/{image_id}">{image_id}</a>' in good_row
    assert '<td class="stage"></td>' in good_row
    assert '<span class="badge failed">failed</span>' in bad_row
    assert '<td class="stage">rootfs</td>' in bad_row
    assert page.index(bad) < page.index(good)  # newest first
    detail = client.get(f"/ui/builds/{bad}").text
    assert 'id="build-error" class="error">stage rootfs: 1 package(s) not found' in detail


def test_the_log_streams_live_and_ends_with_the_state(master: Master, console: Console) -> None:
    client, _ = console
    build_id = start(console, "packages: [slow-me]")  # about 3 s of rootfs steps
    events = sse_events(client, build_id)
    finished = api_build(master, build_id)["finished"]
    lines = [data for kind, data, _ in events if kind == "message"]
    assert any(line.endswith("] rootfs: step 1/10") for line in lines)
    assert any(line.endswith("] === stage commit") for line in lines)
    kind, data, _ = events[-1]
    assert kind == "end"
    end = json.loads(data)
    assert end["state"] == "succeeded" and end["image_id"] and finished
    arrived = [at for kind, _, at in events if kind == "message"]
    assert arrived[-1] - arrived[0] > 1.0  # line by line while it ran, not all at the end
    again = sse_events(client, build_id)  # a finished build: the whole log, then the end
    assert [d for k, d, _ in again if k == "message"] == lines and again[-1][0] == "end"


def test_the_status_fragment_polls_while_the_build_runs(master: Master, console: Console) -> None:
    client, token = console
    build_id = start(console, "packages: [slow-me]")
    wait_for(master, build_id, {"running"})
    fragment = client.get(f"/ui/builds/{build_id}/status", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert 'hx-trigger="every 1s, build-end from:body"' in fragment.text
    assert '<span id="build-state" class="badge running">running</span>' in fragment.text
    assert 'form id="cancel"' in fragment.text
    client.post(f"/ui/builds/{build_id}/cancel", data={"csrf_token": token})
    wait_for(master, build_id)
    done = client.get(f"/ui/builds/{build_id}/status").text
    assert "hx-trigger" not in done and 'form id="cancel"' not in done


def test_cancel_a_running_build(master: Master, console: Console) -> None:
    client, token = console
    build_id = start(console, "packages: [slow-me]")
    wait_for(master, build_id, {"running"})
    page = client.get(f"/ui/builds/{build_id}").text
    assert f'action="/ui/builds/{build_id}/cancel" data-confirm=' in page
    assert client.post(f"/ui/builds/{build_id}/cancel").status_code == 403  # no token
    answer = client.post(f"/ui/builds/{build_id}/cancel", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == f"/ui/builds/{build_id}"
    assert wait_for(master, build_id)["state"] == "cancelled"
    again = client.post(f"/ui/builds/{build_id}/cancel", data={"csrf_token": token})
    assert again.status_code == 409 and "already finished (cancelled)" in again.text


def test_cancel_a_queued_build(master: Master, console: Console) -> None:
    client, token = console
    running = start(console, "packages: [slow-me]")
    queued = start(console)
    assert api_build(master, queued)["state"] == "queued"
    answer = client.post(f"/ui/builds/{queued}/cancel", data={"csrf_token": token})
    assert answer.status_code == 303
    assert api_build(master, queued)["state"] == "cancelled"
    client.post(f"/ui/builds/{running}/cancel", data={"csrf_token": token})
    wait_for(master, running)


def test_starting_needs_the_csrf_token(master: Master, console: Console) -> None:
    client, token = console
    before = build_count(master)
    assert client.post("/ui/builds", data={"overrides": ""}).status_code == 403
    evil = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    answer = client.post("/ui/builds", data={"csrf_token": token}, headers=evil)
    assert answer.status_code == 403
    assert build_count(master) == before


def test_pages_and_the_stream_need_a_login(master: Master) -> None:
    with master.anonymous() as client:
        for path in ("/ui/builds", "/ui/builds/x", "/ui/builds/x/status", "/ui/builds/x/log"):
            answer = client.get(path)
            assert answer.status_code == 303 and answer.headers["location"].startswith("/ui/login")


def test_an_unknown_build_is_a_404_page(console: Console) -> None:
    client, token = console
    for answer in (
        client.get("/ui/builds/nope"),
        client.post("/ui/builds/nope/cancel", data={"csrf_token": token}),
    ):
        assert answer.status_code == 404 and "text/html" in answer.headers["content-type"]
        assert "no build nope" in answer.text
    assert client.get("/ui/builds/nope/log").status_code == 404
