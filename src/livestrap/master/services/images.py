"""Images as the API shows them: the one mapper from what the store reads (ImageInfo,
the on-disk ImageMetadata) to the schemas of /api/v1/images. Written out field by field,
so a change of the file format is a change here, never one of the API."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from livestrap.errors import StoreError
from livestrap.master.schemas.images import Artifact, ImageDetail, ImageDiff, ImageSummary
from livestrap.master.webhooks.notices import image_activated
from livestrap.store.images import ImageInfo, ImageStore, PackageDiff
from livestrap.store.manifest import ImageMetadata


@dataclass(frozen=True)
class ImageRow:
    """One line of the console's image list: the store's line plus what only the
    metadata says (None: not recorded, or the metadata went unreadable since listing)."""

    info: ImageInfo
    kernel_version: str | None
    agent_version: str | None


def image_rows(store: ImageStore) -> list[ImageRow]:
    """Every image, oldest first, with its kernel and agent version."""
    rows = []
    for info in store.list():
        try:
            meta = store.get(info.id)
        except StoreError:  # deleted or broken between list() and get()
            rows.append(ImageRow(info, None, None))
            continue
        rows.append(ImageRow(info, meta.kernel_version, meta.agent_version))
    return rows


def info_of(meta: ImageMetadata, active_id: str | None) -> ImageInfo:
    """The list's line of one image the store has just read (e.g. imported)."""
    problems = tuple(meta.stored_problems)
    return ImageInfo(meta.id, meta.label, meta.created, meta.total_size(), meta.id == active_id,
                     problems)  # fmt: skip


def image_summary(info: ImageInfo) -> ImageSummary:
    return ImageSummary(id=info.id, label=info.label, created=info.created,
                        total_size=info.total_size, active=info.active,
                        problems=list(info.problems))  # fmt: skip


def image_detail(meta: ImageMetadata, active_id: str | None) -> ImageDetail:
    """What the store read, its problems already noted: not checked again on the way out."""
    return ImageDetail(
        id=meta.id,
        label=meta.label,
        created=meta.created,
        builder=meta.builder,
        distro=meta.distro,
        suite=meta.suite,
        arch=meta.arch,
        spec=meta.spec,
        spec_sha256=meta.spec_sha256,
        kernel_version=meta.kernel_version,
        kernel_cmdline=list(meta.kernel_cmdline),
        agent_version=meta.agent_version,
        inputs_sha256=meta.inputs_sha256,
        base_tree=meta.base_tree,
        boot_ram_mb=meta.boot_ram_mb,
        packages=dict(meta.packages),
        artifacts={
            name: Artifact(sha256=art.sha256, size=art.size) for name, art in meta.artifacts.items()
        },
        active=meta.id == active_id,
        problems=list(meta.stored_problems),
        source_date_epoch=meta.source_date_epoch,
        firmware_packages=dict(meta.firmware_packages) if meta.firmware_packages else None,
    )


def image_diff(a: str, b: str, diff: PackageDiff) -> ImageDiff:
    return ImageDiff(a=a, b=b, added=diff.added, removed=diff.removed, changed=diff.changed)


def activate(store: ImageStore, session: Session, image_id: str, by: str) -> None:
    """Make the image active (nodes boot it from their next /boot/ipxe on) and tell the
    webhooks (image.activated, in the caller's transaction)."""
    store.activate(image_id)
    image_activated(session, image_id, by)
