"""`livestrap build --check ID`: rebuild an image's recorded inputs and compare the bytes.

The rebuild runs every stage but commit (nothing reaches the store) with force. It is only
a check when the inputs are still the same: the recorded inputs hash must equal the one
computed now from the stored spec, its files, this builder and what upstream serves.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from livestrap.apt import spec_sources
from livestrap.builder import fingerprint
from livestrap.builder.events import EventSink, discard
from livestrap.builder.pipeline import STAGES, BuildContext, Stage, build
from livestrap.errors import BuildError
from livestrap.spec import ResolvedSpec
from livestrap.store.images import ImageStore
from livestrap.store.manifest import METADATA, ImageMetadata, parse_metadata


@dataclass(frozen=True)
class ArtifactCheck:
    name: str
    recorded: str
    rebuilt: str | None  # None: the rebuild made no such artifact

    @property
    def matches(self) -> bool:
        return self.recorded == self.rebuilt


@dataclass(frozen=True)
class CheckReport:
    image_id: str
    artifacts: list[ArtifactCheck]
    rebuilt: ImageMetadata

    @property
    def matches(self) -> bool:
        return all(a.matches for a in self.artifacts)


def inputs_now(spec: ResolvedSpec, fetch: fingerprint.Fetch = fingerprint.fetch_url) -> str | None:
    """The inputs hash a build of `spec` would get now; None when upstream is unreachable."""
    sources = spec_sources(spec, lambda p: Path(p).read_bytes())
    releases = fingerprint.fetch_releases(sources, fetch)
    if releases is None:
        return None
    return fingerprint.inputs_sha256(spec, fingerprint.release_hashes(releases))


def refusal(meta: ImageMetadata, now: str | None) -> str | None:
    """Why a rebuild now would not check this image, or None when it would."""
    if meta.inputs_sha256 is None:
        return f"image {meta.id} records no inputs hash: its inputs cannot be rebuilt"
    if meta.base_tree is not None:
        return (
            f"image {meta.id} was built incrementally (from kept tree {meta.base_tree}): apt's "
            "and dpkg's bookkeeping in it differ from a full build's, so its bytes cannot be "
            "checked against one; check a full build (`livestrap build --force`)"
        )
    if now is None:
        return "a release file of the image's sources cannot be fetched now"
    if now != meta.inputs_sha256:
        return (
            f"the inputs of image {meta.id} changed since it was built (upstream serves other "
            "release files, or the spec's files or the builder code differ): a rebuild would "
            "not reproduce it"
        )
    return None


def _keep(ctx: BuildContext) -> None:
    """Instead of commit: the rebuilt metadata, read before the workspace goes."""
    ctx.built = parse_metadata((ctx.out / METADATA).read_text())


CHECK_STAGES: list[tuple[str, Stage]] = [
    *((name, stage) for name, stage in STAGES if name != "commit"),
    ("check", _keep),
]


def compare(recorded: ImageMetadata, rebuilt: ImageMetadata) -> CheckReport:
    names = sorted({*recorded.artifacts, *rebuilt.artifacts})
    checks = []
    for name in names:
        if name not in recorded.artifacts:
            continue  # new in this builder: nothing recorded to compare with
        art = rebuilt.artifacts.get(name)
        rebuilt_sum = art.sha256 if art is not None else None
        checks.append(ArtifactCheck(name, recorded.artifacts[name].sha256, rebuilt_sum))
    return CheckReport(recorded.id, checks, rebuilt)


def check_image(
    store: ImageStore,
    meta: ImageMetadata,
    spec: ResolvedSpec,
    *,
    log_path: Path,
    events: EventSink = discard,
    cancel: threading.Event | None = None,
    cache_dir: Path | None = None,
    fetch: fingerprint.Fetch = fingerprint.fetch_url,
) -> CheckReport:
    """Rebuild the image `meta` describes from `spec` (its recorded spec, validated again
    by the caller), committing nothing, and compare the artifacts.
    BuildError("check", ...) when the inputs are no longer the same."""
    why = refusal(meta, inputs_now(spec, fetch))
    if why:
        raise BuildError("check", why)
    rebuilt = build(
        spec,
        store,
        log_path=log_path,
        events=events,
        cancel=cancel,
        stages=CHECK_STAGES,
        cache_dir=cache_dir,
        force=True,
        keep_tree=False,
    )
    if rebuilt.inputs_sha256 != meta.inputs_sha256:
        raise BuildError("check", "upstream changed during the rebuild: run the check again")
    return compare(meta, rebuilt)
