"""build.pipeline.build(): stage order, progress events, failure, cancel and cleanup.

The stages are fakes: the last ones write a tiny image (real checksums, see store_helpers)
and commit it through the store, so the whole run takes milliseconds.
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import pytest
from store_helpers import write_image_dir

from livestrap.builder import pipeline, workspace
from livestrap.builder.events import BuildEvent
from livestrap.builder.pipeline import BuildContext, Stage, build
from livestrap.errors import BuildCancelled, BuildError
from livestrap.resolve import resolve
from livestrap.spec import BuildSpec, ResolvedSpec
from livestrap.store.images import ImageStore

pytestmark = pytest.mark.unit

IMAGE_ID = "fake-20240501-120000"
ARCHIVE_KEY = Path(__file__).resolve().parents[1] / "fixtures/keys/archive-test.asc"
# Resolvable anywhere: no dependence on the host's APT sources.
FAKE_SPEC = resolve(
    BuildSpec(label="fake", mirror="http://deb.example/debian", mirror_key=ARCHIVE_KEY),
    environ={},
    apt_root=Path("/nonexistent-livestrap-apt-root"),
)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "data")


def noop(ctx: BuildContext) -> None:
    ctx.log.write("noop ran")


def write_fake_image(ctx: BuildContext) -> None:
    """What rootfs..metadata leave in the workspace: the artifacts and metadata.yaml."""
    ctx.image_id = IMAGE_ID
    write_image_dir(ctx.workdir, IMAGE_ID, dirname=ctx.out.name)


FAKE_STAGES: list[tuple[str, Stage]] = [
    ("prepare", noop),
    ("image", write_fake_image),
    ("commit", pipeline.stage_commit),
]


def run_build(
    store: ImageStore,
    tmp_path: Path,
    stages: list[tuple[str, Stage]],
    events: list[BuildEvent] | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Run build() with `stages`, collecting its events into `events`; returns the log path."""
    log = tmp_path / "logs/build.log"
    build(
        FAKE_SPEC,
        store,
        log_path=log,
        events=events.append if events is not None else lambda e: None,
        cancel=cancel,
        stages=stages,
        cache_dir=tmp_path / "cache",
    )
    return log


def kinds(events: list[BuildEvent]) -> list[tuple[str, str | None]]:
    return [(e.kind, e.stage) for e in events]


def build_trees(store: ImageStore) -> list[str]:
    if not store.tmp_dir.exists():
        return []
    return sorted(p.name for p in store.tmp_dir.iterdir() if p.name.startswith("build-"))


def test_build_success(store: ImageStore, tmp_path: Path) -> None:
    events: list[BuildEvent] = []
    log = run_build(store, tmp_path, FAKE_STAGES, events)
    assert kinds(events) == [
        ("build-start", None),
        ("stage-start", "prepare"),
        ("stage-done", "prepare"),
        ("stage-start", "image"),
        ("stage-done", "image"),
        ("stage-start", "commit"),
        ("stage-done", "commit"),
        ("build-done", None),
    ]
    assert events[0].message == str(log)
    done = events[-1]
    assert done.message == IMAGE_ID
    assert done.data["image_id"] == IMAGE_ID
    assert done.data["log"] == str(log)
    assert all(isinstance(e.data["stage_s"], float) for e in events if e.kind == "stage-done")
    elapsed = [e.elapsed_s for e in events[1:]]
    assert elapsed == sorted(elapsed)

    assert [info.id for info in store.list()] == [IMAGE_ID]
    assert store.get(IMAGE_ID).id == IMAGE_ID
    assert build_trees(store) == []  # the workspace became the image: nothing left behind
    text = log.read_text()
    for line in (
        "=== stage prepare",
        "noop ran",
        "=== stage commit",
        f"=== built image {IMAGE_ID}",
    ):
        assert line in text


def test_build_returns_the_committed_metadata(store: ImageStore, tmp_path: Path) -> None:
    meta = build(
        FAKE_SPEC,
        store,
        log_path=tmp_path / "build.log",
        stages=FAKE_STAGES,
        cache_dir=tmp_path / "cache",
    )
    assert meta == store.get(IMAGE_ID)


def test_stages_share_one_context(store: ImageStore, tmp_path: Path) -> None:
    seen: list[BuildContext] = []

    def record(ctx: BuildContext) -> None:
        seen.append(ctx)
        assert ctx.workdir.is_dir()
        assert ctx.workdir.parent == store.tmp_dir
        assert ctx.workdir.name.startswith(workspace.BUILD_PREFIX)
        assert ctx.rootfs == ctx.workdir / "rootfs"
        assert ctx.cache_dir == tmp_path / "cache/apt-archives"
        assert (store.data_dir / "build.lock").exists()

    run_build(store, tmp_path, [("one", record), ("two", record), *FAKE_STAGES[1:]])
    assert len(seen) == 2
    assert seen[0] is seen[1]
    assert not seen[0].workdir.exists()


def test_failing_stage(store: ImageStore, tmp_path: Path) -> None:
    ran: list[str] = []

    def explode(ctx: BuildContext) -> None:
        (ctx.workdir / "rootfs/etc").mkdir(parents=True)  # something half-written
        raise RuntimeError("boom")

    stages: list[tuple[str, Stage]] = [
        ("prepare", noop),
        ("explode", explode),
        ("never", lambda ctx: ran.append("never")),
        *FAKE_STAGES[1:],
    ]
    events: list[BuildEvent] = []
    with pytest.raises(BuildError) as exc:
        run_build(store, tmp_path, stages, events)
    err = exc.value
    assert type(err) is BuildError
    assert err.stage == "explode"
    assert str(err) == "stage explode: RuntimeError: boom"
    assert isinstance(err.__cause__, RuntimeError)
    assert ran == []

    assert kinds(events) == [
        ("build-start", None),
        ("stage-start", "prepare"),
        ("stage-done", "prepare"),
        ("stage-start", "explode"),
        ("build-failed", "explode"),
    ]
    assert events[-1].message == "stage explode: RuntimeError: boom"
    assert build_trees(store) == []  # workspace removed
    assert not store.images_dir.exists() or list(store.images_dir.iterdir()) == []
    assert (
        "=== build failed: stage explode: RuntimeError: boom"
        in (tmp_path / "logs/build.log").read_text()
    )


def test_build_error_from_a_stage_keeps_its_stage_and_tail(
    store: ImageStore, tmp_path: Path
) -> None:
    def fail(ctx: BuildContext) -> None:
        raise BuildError("rootfs", "2 package(s) not found", log_tail="E: nope")

    events: list[BuildEvent] = []
    with pytest.raises(BuildError) as exc:
        run_build(store, tmp_path, [("rootfs", fail)], events)
    assert str(exc.value) == "stage rootfs: 2 package(s) not found"
    failed = events[-1]
    assert (failed.kind, failed.stage, failed.data) == (
        "build-failed",
        "rootfs",
        {"log_tail": "E: nope"},
    )
    assert build_trees(store) == []


def test_keyboard_interrupt_cancels(store: ImageStore, tmp_path: Path) -> None:
    def interrupted(ctx: BuildContext) -> None:
        raise KeyboardInterrupt

    events: list[BuildEvent] = []
    with pytest.raises(BuildCancelled) as exc:
        run_build(store, tmp_path, [("prepare", noop), ("squashfs", interrupted)], events)
    assert exc.value.stage == "squashfs"
    assert str(exc.value) == "stage squashfs: build cancelled (interrupted)"
    assert kinds(events)[-1] == ("build-failed", "squashfs")
    assert build_trees(store) == []
    assert not store.images_dir.exists()


def test_cancel_event_stops_after_the_stage(store: ImageStore, tmp_path: Path) -> None:
    cancel = threading.Event()
    ran: list[str] = []

    def request_cancel(ctx: BuildContext) -> None:
        assert ctx.cancel is cancel
        cancel.set()

    stages: list[tuple[str, Stage]] = [
        ("prepare", request_cancel),
        ("rootfs", lambda ctx: ran.append("rootfs")),
    ]
    with pytest.raises(
        BuildCancelled, match="stage prepare: build cancelled \\(cancel requested\\)"
    ):
        run_build(store, tmp_path, stages, cancel=cancel)
    assert ran == []
    assert build_trees(store) == []


def test_build_refused_while_another_holds_the_lock(store: ImageStore, tmp_path: Path) -> None:
    events: list[BuildEvent] = []
    store.data_dir.mkdir(parents=True, exist_ok=True)
    holder = os.open(store.data_dir / "build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:  # another process's build holds the lock
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BuildError) as exc:
            run_build(store, tmp_path, FAKE_STAGES, events)
    finally:
        os.close(holder)
    assert exc.value.stage == "prepare"
    assert "another build is running" in str(exc.value)
    assert kinds(events) == [
        ("build-start", None),
        ("build-failed", "prepare"),
    ]
    assert store.list() == []


def test_stale_build_trees_are_removed_first(store: ImageStore, tmp_path: Path) -> None:
    stale = store.tmp_dir / "build-old123"
    (stale / "rootfs/etc").mkdir(parents=True)
    keep = store.tmp_dir / "import-abc"
    keep.mkdir()
    log = run_build(store, tmp_path, FAKE_STAGES)
    assert not stale.exists()
    assert keep.is_dir()
    assert f"removed stale build tree {stale}" in log.read_text()


def test_build_takes_only_a_resolved_spec(store: ImageStore, tmp_path: Path) -> None:
    """Defaults, pins and the agent repository come first (livestrap.builder.plan)."""
    with pytest.raises(TypeError, match="ResolvedSpec"):
        build(BuildSpec(label="fake"), store, log_path=tmp_path / "b.log", stages=FAKE_STAGES)  # type: ignore[arg-type]
    assert isinstance(FAKE_SPEC, ResolvedSpec) and not store.tmp_dir.exists()
