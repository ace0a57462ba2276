"""Response models of /api/v1/images: the same facts `livestrap images ...` prints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from livestrap.store.images import ImageInfo, PackageDiff
from livestrap.store.manifest import ImageMetadata


class ImageSummary(BaseModel):
    """One image of the list: enough to choose one without reading its metadata."""

    id: str
    label: str
    created: datetime
    total_size: int = Field(description="Bytes of vmlinuz + initrd.img + root.squashfs.")
    active: bool = Field(description="Whether nodes boot this image now.")

    @classmethod
    def of(cls, info: ImageInfo) -> ImageSummary:
        return cls(
            id=info.id,
            label=info.label,
            created=info.created,
            total_size=info.total_size,
            active=info.active,
        )

    @classmethod
    def of_metadata(cls, meta: ImageMetadata, active_id: str | None) -> ImageSummary:
        return cls(
            id=meta.id,
            label=meta.label,
            created=meta.created,
            total_size=meta.total_size(),
            active=meta.id == active_id,
        )


class ImageDetail(ImageMetadata):
    """The image's metadata.yaml as JSON, plus whether nodes boot it now."""

    active: bool

    @classmethod
    def of(cls, meta: ImageMetadata, active_id: str | None) -> ImageDetail:
        return cls(**meta.model_dump(), active=meta.id == active_id)


class ImageDiff(BaseModel):
    """Package changes from image `a` to image `b`: review them before activating `b`."""

    a: str
    b: str
    added: dict[str, str] = Field(description="Packages only in b: name -> version.")
    removed: dict[str, str] = Field(description="Packages only in a: name -> version.")
    changed: dict[str, tuple[str, str]] = Field(
        description="Packages in both with another version: name -> [version in a, in b]."
    )

    @classmethod
    def of(cls, a: str, b: str, diff: PackageDiff) -> ImageDiff:
        return cls(a=a, b=b, added=diff.added, removed=diff.removed, changed=diff.changed)


class Activated(BaseModel):
    active: str = Field(description="Id of the image nodes now boot.")
