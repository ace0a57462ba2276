"""master.worker from the database alone: the stored spec's round trip and its hostile
forms, the compare-and-set claim with two workers, and the modes of what it makes."""

from __future__ import annotations

import logging
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fake_build import FAKE_STAGES
from livestrap.builder.workspace import build_lock
from livestrap.errors import SpecError
from livestrap.master.buildslot import Slot, worker_lock
from livestrap.master.config import MasterSettings
from livestrap.master.db import Database, migrate
from livestrap.master.groupshare import share_tree, shared_log
from livestrap.master.jobs import BuildQueue
from livestrap.master.models import Build
from livestrap.master.services.settings import check_spec, write_settings
from livestrap.master.worker import BuildWorker, stored_spec
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).parent.parent / "fixtures"
PORTABLE = {"mirror": "http://deb.example/debian", "mirror_key": "archive.asc"}


@pytest.fixture
def cfg(tmp_path: Path) -> MasterSettings:
    data = tmp_path / "data"
    (data / "spec").mkdir(parents=True)
    shutil.copy(FIXTURES / "keys/archive-test.asc", data / "spec/archive.asc")
    return MasterSettings(data_dir=data, role="api")


@pytest.fixture
def queue(cfg: MasterSettings) -> Iterator[BuildQueue]:
    db = Database(cfg.db_url)
    migrate(db.engine)
    with db.session() as session:
        write_settings(session, check_spec(PORTABLE, cfg)[0])
    yield BuildQueue(db, ImageStore(cfg.data_dir), cfg, FAKE_STAGES)
    db.dispose()


def _worker(q: BuildQueue) -> BuildWorker:
    return BuildWorker(q.db, q.store, q.settings, FAKE_STAGES, who="builder")


def _row_state(q: BuildQueue, build_id: str) -> str:
    with q.db.session() as session:
        row = session.get(Build, build_id)
        assert row is not None
        return row.state


def test_role_api_has_no_worker(queue: BuildQueue) -> None:
    assert queue.worker is None


def test_the_stored_spec_round_trips(queue: BuildQueue) -> None:
    spec = queue.prepare({"packages": ["htop"]})
    assert stored_spec(spec.model_dump(mode="json"), queue.settings) == spec


@pytest.mark.security
@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("mirror_key", "admin.token", "admin.token"),
        ("extra_dirs", ["keys"], "keys"),
        ("bogus", 1, "bogus"),
    ],
)
def test_a_hostile_stored_spec_is_refused(
    queue: BuildQueue, field: str, value: object, says: str
) -> None:
    data = queue.prepare(None).model_dump(mode="json")
    if field != "bogus":
        value = (
            [str(queue.settings.data_dir / v) for v in value]
            if isinstance(value, list)
            else str(queue.settings.data_dir / str(value))
        )
    with pytest.raises(SpecError, match=says):
        stored_spec({**data, field: value}, queue.settings)


def test_two_workers_claim_a_build_once(queue: BuildQueue) -> None:
    build_id = queue.submit(None, activate=False, force=False)
    one, two = _worker(queue), _worker(queue)
    job = one.claim()
    assert job is not None and job.id == build_id
    assert two.claim() is None


@pytest.mark.security
def test_the_log_path_comes_from_the_build_id_not_the_row(
    queue: BuildQueue, tmp_path: Path
) -> None:
    build_id = queue.submit(None, activate=False, force=False)
    elsewhere = tmp_path / "victim"
    with queue.db.session() as session:
        row = session.get(Build, build_id)
        assert row is not None
        row.log_path = str(elsewhere)  # what a compromised API could write
    worker = _worker(queue)
    job = worker.claim()
    assert job is not None
    assert job.log_path == queue.settings.layout.build_log(build_id)
    worker.finish(job, worker.execute(job))
    assert not elsewhere.exists() and job.log_path.is_file()


def test_a_running_row_is_left_over_only_without_a_worker(queue: BuildQueue) -> None:
    build_id = queue.submit(None, activate=False, force=False)
    worker = _worker(queue)
    assert worker.claim() is not None  # `running`, as a killed builder leaves it
    with worker_lock(queue.settings.layout.worker_lock) as held:
        assert held and not _worker(queue).turn()  # a live worker holds it: left alone
    assert _row_state(queue, build_id) == "running"
    assert _worker(queue).turn() is False  # no lock held: recovered, nothing queued
    assert _row_state(queue, build_id) == "interrupted"
    with queue.db.session() as session:
        row = session.get(Build, build_id)
        assert row is not None
        assert row.error == "the builder stopped while this build was running"


@pytest.mark.security
def test_a_log_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/build-x.log").symlink_to(tmp_path / "target")
    with pytest.raises(OSError):
        shared_log(tmp_path / "logs/build-x.log")
    assert not (tmp_path / "target").exists()


def test_made_files_are_group_readable(tmp_path: Path) -> None:
    log = shared_log(tmp_path / "logs/build-y.log")
    assert stat.S_IMODE(log.stat().st_mode) == 0o640
    image = tmp_path / "images/img"
    image.mkdir(parents=True, mode=0o700)
    (image / "f").write_text("x")
    (image / "f").chmod(0o600)
    (image / "link").symlink_to("/etc/passwd")
    share_tree(image)
    assert stat.S_IMODE(image.stat().st_mode) == 0o750
    assert stat.S_IMODE((image / "f").stat().st_mode) == 0o640
    assert image.stat().st_gid == (tmp_path / "images").stat().st_gid


def test_a_second_worker_starting_leaves_the_build_lock_alone(
    queue: BuildQueue, caplog: pytest.LogCaptureFixture
) -> None:
    """CI once failed a build with "another build is running (pid ?)": a second builder's
    start took the build lock for a moment (to sweep stale trees) while the first one's
    build took it. The sweep now happens only under the worker lock."""
    stale = queue.store.tmp_dir / "build-left"
    stale.mkdir(parents=True)
    with worker_lock(queue.settings.layout.worker_lock) as held:  # a worker that builds
        assert held
        with build_lock(queue.settings.data_dir):  # ... right now
            second = _worker(queue)
            second.start()
            second.stop()
        assert stale.is_dir()  # not its to sweep
        assert "not cleaned" not in caplog.text  # it never tried the build lock
    first = _worker(queue)
    first.start()
    first.stop()
    assert not stale.exists()


def test_a_queued_build_waits_while_a_build_outside_the_queue_holds_the_lock(
    queue: BuildQueue, caplog: pytest.LogCaptureFixture
) -> None:
    """A CLI build, or a build whose worker lost the slot, holds the data dir's build lock:
    the worker that holds the slot claims nothing until it is free (the build would fail)."""
    build_id = queue.submit(None, activate=False, force=False)
    worker = _worker(queue)
    release, taken = threading.Event(), threading.Event()

    def other_build() -> None:
        with build_lock(queue.settings.data_dir):
            taken.set()
            release.wait(10)

    holder = threading.Thread(target=other_build)  # the lock is per thread
    holder.start()
    assert taken.wait(10)
    with caplog.at_level(logging.WARNING, logger="livestrap.master.worker"):
        assert worker.turn() is False and worker.turn() is False
    assert _row_state(queue, build_id) == "queued"
    assert caplog.text.count("builds wait: another build is running") == 1  # once
    release.set()
    holder.join()
    assert worker.turn() is True
    assert _row_state(queue, build_id) == "succeeded"


class LostSlot(Slot):
    """A slot whose PostgreSQL session ended after the build started."""

    def __init__(self) -> None:
        super().__init__(True)

    def alive(self) -> bool:
        return False


def test_a_build_whose_worker_lost_the_slot_stops(queue: BuildQueue) -> None:
    build_id = queue.submit({"packages": ["slow-me"]}, activate=False, force=False)
    worker = _worker(queue)
    job = worker.claim()
    assert job is not None
    began = time.monotonic()
    outcome = worker.execute(job, LostSlot())
    assert time.monotonic() - began < 2.8  # the whole build takes about 3 s
    assert outcome.state == "interrupted" and "lost the build slot" in (outcome.error or "")
    worker.finish(job, outcome)
    assert _row_state(queue, build_id) == "interrupted"
    assert "=== build interrupted: the builder lost the build slot" in job.log_path.read_text()
