"""A fast stand-in for the build pipeline's stages: same events, log and store commit,
a few bytes per artifact. The master's API tests drive build jobs with it."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import UTC, datetime

from livestrap.builder.pipeline import BuildContext, Stage
from livestrap.errors import BuildCancelled
from livestrap.store.manifest import (
    ARTIFACTS,
    METADATA,
    Artifact,
    ImageMetadata,
    dump_metadata,
)

# Seconds each stage's steps take (default 0.3). A knob for watching a log fill by hand or
# on a slow machine: set it in the environment of a master started with --fake-builds
# (master_process(env=...) passes it on). No test sets it: the browser test slows its
# build with a `slow-me` package instead.
STEP_ENV = "LIVESTRAP_TEST_FAKE_STEP_S"
STEP_S = float(os.environ.get(STEP_ENV, "0.3"))


def _work(ctx: BuildContext, stage: str, lines: int) -> None:
    for i in range(lines):
        if ctx.cancel is not None and ctx.cancel.is_set():
            raise BuildCancelled(stage, "cancel requested")
        ctx.log.write(f"{stage}: step {i + 1}/{lines}")
        time.sleep(STEP_S / lines)


def fake_prepare(ctx: BuildContext) -> None:
    ctx.out.mkdir()
    _work(ctx, "prepare", 2)


def fake_rootfs(ctx: BuildContext) -> None:
    _work(ctx, "rootfs", 10)
    if "fail-me" in ctx.spec.packages:
        from livestrap.errors import BuildError

        raise BuildError("rootfs", "1 package(s) not found in the configured repositories: fail-me")
    if "slow-me" in ctx.spec.packages:
        for _ in range(10):  # about 3 s, so tests can cancel or kill it mid-way
            _work(ctx, "rootfs", 10)


def fake_artifacts(ctx: BuildContext) -> None:
    for name in ARTIFACTS:
        (ctx.out / name).write_bytes(f"{name} built from {ctx.spec.label}\n".encode() * 1000)
    ctx.kernel_version = "6.1.0-fake"
    ctx.packages = {"livestrap-agent": "0.1.0", **{p: "1.0" for p in ctx.spec.packages}}


def fake_metadata(ctx: BuildContext) -> None:
    created = datetime.now(UTC).replace(microsecond=0)
    ctx.image_id = f"{ctx.spec.label}-{created:%Y%m%d-%H%M%S}-{time.monotonic_ns() % 100000}"
    meta = ImageMetadata(
        id=ctx.image_id,
        label=ctx.spec.label,
        created=created,
        builder="livestrap fake",
        distro=ctx.spec.distro,
        suite=ctx.spec.suite or "bookworm",
        arch="amd64",
        spec=ctx.spec.model_dump(mode="json"),
        spec_sha256=ctx.spec.sha256(),
        kernel_version=ctx.kernel_version,
        kernel_cmdline=ctx.spec.kernel_options,
        agent_version="0.1.0",
        packages=ctx.packages,
        artifacts={
            name: Artifact(
                sha256=hashlib.sha256((ctx.out / name).read_bytes()).hexdigest(),
                size=(ctx.out / name).stat().st_size,
            )
            for name in ARTIFACTS
        },
    )
    (ctx.out / METADATA).write_text(dump_metadata(meta))


def fake_commit(ctx: BuildContext) -> None:
    ctx.store.commit(ctx.out, ctx.image_id)


FAKE_STAGES: list[tuple[str, Stage]] = [
    ("prepare", fake_prepare),
    ("rootfs", fake_rootfs),
    ("bootfiles", fake_artifacts),
    ("metadata", fake_metadata),
    ("commit", fake_commit),
]
