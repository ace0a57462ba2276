"""Response models of /api/v1/images: the same facts `livestrap images ...` prints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from livestrap.store.images import ImageInfo, PackageDiff
from livestrap.store.manifest import ImageMetadata

PROBLEMS = (
    "Rules of this livestrap that the stored image, made under older ones, breaks; empty "
    "for a valid image. One with kernel options the rule refuses is never booted (/boot/ipxe "
    "answers the retry script): build or import a new image."
)


class ImageSummary(BaseModel):
    """One image of the list: enough to choose one without reading its metadata."""

    id: str
    label: str
    created: datetime
    total_size: int = Field(description="Bytes of vmlinuz + initrd.img + root.squashfs.")
    active: bool = Field(description="Whether nodes boot this image now.")
    problems: list[str] = Field(default_factory=list, description=PROBLEMS)

    @classmethod
    def of(cls, info: ImageInfo) -> ImageSummary:
        return cls(
            id=info.id,
            label=info.label,
            created=info.created,
            total_size=info.total_size,
            active=info.active,
            problems=list(info.problems),
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
    problems: list[str] = Field(default_factory=list, description=PROBLEMS)

    # What the store read, its problems already noted: not checked again on the way out.
    @field_validator("spec")
    @classmethod
    def _spec(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        return v

    @field_validator("kernel_cmdline")
    @classmethod
    def _kernel_cmdline(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return v

    @classmethod
    def of(cls, meta: ImageMetadata, active_id: str | None) -> ImageDetail:
        return cls(**meta.model_dump(), active=meta.id == active_id, problems=meta.stored_problems)


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
