"""master.jobs and master.joblog: state rules, progress math, override merge, spec checks,
log tailing; and the queue itself in-process (SQLite in tmp, the fake stages)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from fake_build import FAKE_STAGES
from livestrap.builder.events import BuildEvent, EventKind
from livestrap.errors import ConflictError, NotFoundError, SpecError
from livestrap.master import jobs
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.joblog import append_log, progress_update, read_from, sse_lines, tail_log
from livestrap.master.jobs import BuildQueue, can_move, merge_overrides
from livestrap.master.models import Build
from livestrap.master.services.settings import check_spec, write_settings
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures"
NAMES = [name for name, _ in FAKE_STAGES]  # prepare rootfs bootfiles metadata commit
# Resolvable anywhere: no dependence on the host's APT sources.
PORTABLE = {"mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}


# -- pure parts -----------------------------------------------------------------------------


def test_states_only_move_forward() -> None:
    assert can_move("queued", "running")
    assert can_move("queued", "cancelled")
    assert can_move("queued", "interrupted")
    assert can_move("running", "succeeded")
    assert can_move("running", "cancelled")
    assert not can_move("queued", "succeeded")
    assert not can_move("running", "queued")
    for final in jobs.FINISHED:
        assert not any(can_move(final, other) for other in jobs.STATES)


def test_override_merge_replaces_top_level_keys() -> None:
    base = {"label": "a", "packages": ["x", "y"], "compression": "zstd"}
    merged = merge_overrides(base, {"packages": ["z"], "label": "b"})
    assert merged == {"label": "b", "packages": ["z"], "compression": "zstd"}
    assert base["packages"] == ["x", "y"]  # not changed in place
    assert merge_overrides(base, None) == base
    assert merge_overrides(base, {}) == base


@pytest.mark.parametrize(
    ("kind", "stage", "expected"),
    [
        ("build-start", None, None),
        ("stage-start", "prepare", {"stage": "prepare", "progress": 0.0}),
        ("stage-done", "prepare", {"stage": "prepare", "progress": 0.2}),
        ("stage-start", "bootfiles", {"stage": "bootfiles", "progress": 0.4}),
        ("stage-done", "commit", {"stage": "commit", "progress": 1.0}),
        ("stage-start", "unknown", {"stage": "unknown"}),
        ("build-done", None, {"progress": 1.0}),
        ("build-failed", "rootfs", {"stage": "rootfs"}),
    ],
)
def test_progress_is_the_fraction_of_stages_done(
    kind: EventKind, stage: str | None, expected: dict[str, object] | None
) -> None:
    assert progress_update(NAMES, BuildEvent(kind, stage)) == expected


def test_progress_with_no_stage_list_never_divides_by_zero() -> None:
    assert progress_update([], BuildEvent("stage-start", "x")) == {"stage": "x"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    (data / "spec").mkdir(parents=True)  # API specs' files live in <data-dir>/spec
    shutil.copy(FIXTURES / "keys/archive-test.asc", data / "spec/archive.asc")
    shutil.copy(FIXTURES / "keys/repo-test.asc", data / "spec/repo.asc")
    return data


def _cfg(data_dir: Path) -> MasterSettings:
    return MasterSettings(data_dir=data_dir)


def test_check_spec_takes_relative_paths_from_the_spec_dir(data_dir: Path) -> None:
    repo = {"name": "acme", "uri": "http://acme.example/debian", "suite": "s", "key": "repo.asc"}
    spec, resolved = check_spec({**PORTABLE, "repos": [repo]}, _cfg(data_dir))
    assert spec.repos[0].key == data_dir / "spec/repo.asc"
    assert spec.suite is None and resolved.suite == "bookworm"
    assert resolved.kernel == "linux-image-amd64"


def test_check_spec_names_the_field(data_dir: Path) -> None:
    with pytest.raises(SpecError, match=r"settings is invalid:\n  packages: malformed"):
        check_spec({**PORTABLE, "packages": ["Bad Name"]}, _cfg(data_dir), "settings")


def test_check_spec_refuses_pin_conflicts(data_dir: Path) -> None:
    repos = [
        {"name": n, "uri": "http://same.example/x", "suite": "s", "key": "repo.asc"}
        for n in ("one", "two")
    ]
    with pytest.raises(SpecError, match="share the pin"):
        check_spec({**PORTABLE, "repos": repos}, _cfg(data_dir))


# -- log tailing ----------------------------------------------------------------------------


async def _collect(chunks: AsyncIterator[bytes] | AsyncIterator[str]) -> list[bytes | str]:
    return [c async for c in chunks]


def test_tail_without_follow_returns_what_is_there(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    append_log(log, "one")
    append_log(log, "two")

    async def never() -> bool:
        raise AssertionError("not asked without follow")

    assert b"".join(asyncio.run(_collect(tail_log(log, never, follow=False)))) == b"one\ntwo\n"  # type: ignore[arg-type]
    assert asyncio.run(_collect(tail_log(tmp_path / "none.log", never, follow=False))) == []


def test_tail_follows_until_finished_and_loses_no_line(tmp_path: Path) -> None:
    """Lines written just before the build is marked finished still arrive."""
    log = tmp_path / "b.log"
    checks = 0

    async def finished() -> bool:
        nonlocal checks
        checks += 1
        if checks == 2:
            append_log(log, "first")
        if checks == 3:  # the worker's last line lands, then the state says finished
            append_log(log, "last")
        return checks >= 3

    got = asyncio.run(_collect(tail_log(log, finished, poll_s=0.01)))
    assert b"".join(got) == b"first\nlast\n"  # type: ignore[arg-type]


def test_sse_sends_one_event_per_line_then_end() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"a\r\nb"
        yield "é\nc".encode()[:2]  # a character split across chunks
        yield "é\nc".encode()[2:]

    async def end() -> str:
        return '{"state": "succeeded"}'

    events = asyncio.run(_collect(sse_lines(chunks(), end)))
    assert events == [
        "data: a\n\n",
        "data: bé\n\n",
        "data: c\n\n",
        'event: end\ndata: {"state": "succeeded"}\n\n',
    ]


def test_read_from_an_offset(tmp_path: Path) -> None:
    log = tmp_path / "b.log"
    log.write_bytes(b"0123456789")
    assert read_from(log, 4, size=3) == b"456"


# -- the queue in-process ---------------------------------------------------------------------


@pytest.fixture
def queue(data_dir: Path) -> Iterator[BuildQueue]:
    cfg = MasterSettings(data_dir=data_dir)
    db = Database(cfg.db_url)
    migrate(db.engine)
    q = BuildQueue(db, ImageStore(data_dir), cfg, FAKE_STAGES)
    with db.session() as session:
        write_settings(session, check_spec(PORTABLE, cfg)[0])
    yield q
    q.stop()
    db.dispose()


def _row(q: BuildQueue, build_id: str) -> Build:
    with q.db.session() as session:
        row = session.get(Build, build_id)
        assert row is not None
        return row


def _wait(q: BuildQueue, build_id: str, timeout: float = 10) -> Build:
    deadline = time.monotonic() + timeout
    while not q.is_finished(build_id):
        assert time.monotonic() < deadline, f"build {build_id} did not finish"
        time.sleep(0.02)
    return _row(q, build_id)


def test_queue_builds_with_overrides_and_stores_the_effective_spec(queue: BuildQueue) -> None:
    queue.start()
    build_id = queue.submit({"label": "lab", "packages": ["htop"]}, activate=True, force=False)
    row = _wait(queue, build_id)
    assert (row.state, row.progress, row.stage) == ("succeeded", 1.0, "commit")
    assert row.spec["label"] == "lab" and row.spec["packages"] == ["htop"]
    assert row.spec["suite"] == "bookworm"  # resolved before it was stored
    assert row.image_id is not None and row.image_id.startswith("lab-")
    assert queue.store.active_id() == row.image_id
    assert "=== activated" in Path(row.log_path).read_text()


def test_overrides_are_validated_with_the_settings(queue: BuildQueue) -> None:
    with pytest.raises(SpecError, match=r"overrides.*\n  bogus: unknown key"):
        queue.submit({"bogus": 1}, activate=False, force=False)


def test_cancel_queued_then_finished(queue: BuildQueue) -> None:
    build_id = queue.submit(None, activate=False, force=False)  # worker not started: stays queued
    queue.cancel(build_id)
    row = _row(queue, build_id)
    assert row.state == "cancelled" and row.started_at is None
    with pytest.raises(ConflictError):
        queue.cancel(build_id)
    with pytest.raises(NotFoundError):
        queue.cancel("no-such-build")


def test_start_marks_left_over_builds_interrupted(queue: BuildQueue) -> None:
    build_id = queue.submit(None, activate=False, force=False)
    with queue.db.session() as session:
        row = session.get(Build, build_id)
        assert row is not None
        row.state = "running"  # as a killed master would have left it
    queue.start()
    row = _row(queue, build_id)
    assert row.state == "interrupted" and "master stopped" in (row.error or "")
    assert "interrupted" in Path(row.log_path).read_text()


def test_stop_interrupts_the_running_build(queue: BuildQueue) -> None:
    queue.start()
    build_id = queue.submit({"packages": ["slow-me"]}, activate=False, force=False)
    waiting = queue.submit(None, activate=False, force=False)
    deadline = time.monotonic() + 5
    while _row(queue, build_id).state != "running":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    queue.stop()
    assert _row(queue, build_id).state == "interrupted"
    assert _row(queue, waiting).state == "queued"  # in the database: the next worker runs it
    assert not list(queue.store.tmp_dir.glob("build-*"))
    with pytest.raises(ConflictError, match="stopping"):
        queue.submit(None, activate=False, force=False)


@pytest.mark.security
def test_a_queued_build_is_rechecked_with_the_api_rules(queue: BuildQueue, tmp_path: Path) -> None:
    """Accepted at submit, then a later upload put a link where the overlay was: the
    worker refuses to copy what it now points at (the master's rules alone allowed it)."""
    overlay = queue.settings.spec_dir / "overlay"
    (overlay / "etc").mkdir(parents=True)
    build_id = queue.submit({"extra_dirs": ["overlay"]}, activate=False, force=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(overlay)
    overlay.symlink_to(elsewhere)
    assert queue.worker is not None
    job = queue.worker.claim()  # what the worker does next, in this thread
    assert job is not None and job.id == build_id
    outcome = queue.worker.execute(job)
    assert outcome.state == "failed" and "outside" in (outcome.error or ""), outcome.error
    assert outcome.image_id is None and not list(queue.store.images_dir.glob("*"))


# -- database errors while claiming or cancelling -----------------------------------------


def _db_error() -> OperationalError:
    return OperationalError("claim", {}, Exception("database is locked"))


def _in_thread(thread: str | None) -> bool:
    return thread is None or threading.current_thread().name == thread


def _fail_one_commit(
    q: BuildQueue, monkeypatch: pytest.MonkeyPatch, thread: str | None = None
) -> None:
    """The next session (in `thread`, when named) fails to commit: its body ran, then it
    rolls back, as a locked SQLite would. Later sessions work."""
    real = q.db.session

    @contextmanager
    def failing() -> Iterator[Session]:
        if not _in_thread(thread):
            with real() as session:
                yield session
            return
        monkeypatch.setattr(q.db, "session", real)
        with real() as session:
            yield session
            raise _db_error()

    monkeypatch.setattr(q.db, "session", failing)


def _queued_after_a_failed(
    q: BuildQueue, monkeypatch: pytest.MonkeyPatch, action: Callable[[str], object]
) -> str:
    """A new build whose `action` (claim or cancel) failed to commit: still queued."""
    build_id = q.submit(None, activate=False, force=False)
    _fail_one_commit(q, monkeypatch)
    with pytest.raises(OperationalError):
        action(build_id)
    assert _row(q, build_id).state == "queued"
    return build_id


def test_a_failed_claim_lookup_leaves_the_build_queued(
    queue: BuildQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_get = Session.get

    def get_once(self: Session, *args: Any, **kwargs: Any) -> Any:
        if not _in_thread("build-worker"):
            return real_get(self, *args, **kwargs)
        monkeypatch.setattr(Session, "get", real_get)
        raise _db_error()

    queue.start()
    monkeypatch.setattr(Session, "get", get_once)
    build_id = queue.submit(None, activate=False, force=False)
    assert _wait(queue, build_id).state == "succeeded"  # the worker's next turn runs it
    assert Session.get is real_get  # the failure did happen


def test_a_failed_claim_commit_leaves_the_build_queued_and_cancellable(
    queue: BuildQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the claim as the worker does it, in this thread
    worker = queue.worker
    assert worker is not None
    build_id = _queued_after_a_failed(queue, monkeypatch, lambda _: worker.claim())
    queue.cancel(build_id)  # no leftover cancel event answers: the queued build is cancelled
    row = _row(queue, build_id)
    assert row.state == "cancelled" and row.started_at is None
    assert worker.claim() is None


def test_a_failed_claim_commit_then_the_worker_runs_it(
    queue: BuildQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue.start()
    _fail_one_commit(queue, monkeypatch, "build-worker")
    build_id = queue.submit(None, activate=False, force=False)
    assert _wait(queue, build_id).state == "succeeded"
    assert queue.worker is not None and queue.worker._job is None
    with pytest.raises(ConflictError):
        queue.cancel(build_id)  # finished: no 202 on a leftover event


def test_a_failed_cancel_leaves_the_build_claimable(
    queue: BuildQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_id = _queued_after_a_failed(queue, monkeypatch, queue.cancel)
    assert queue.worker is not None
    job = queue.worker.claim()
    assert job is not None and job.id == build_id
    assert _row(queue, build_id).state == "running"
