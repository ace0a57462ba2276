"""Response models of /api/v1/images: the same facts `livestrap images ...` prints.

Models of their own, not the store's: the on-disk metadata (store.manifest) may change
its format without changing the API (master.services.images maps one to the other)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

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
    total_size: int = Field(
        description="Bytes of vmlinuz + initrd.img + root.squashfs (+ the SBOM, if any)."
    )
    active: bool = Field(description="Whether nodes boot this image now.")
    problems: list[str] = Field(default_factory=list, description=PROBLEMS)


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    size: int


class ImageDetail(BaseModel):
    """The image's metadata.yaml as JSON, plus whether nodes boot it now."""

    model_config = ConfigDict(extra="forbid")

    id: str
    label: str
    created: datetime
    builder: str
    distro: str
    suite: str
    arch: str
    spec: dict[str, Any]
    spec_sha256: str
    kernel_version: str
    kernel_cmdline: list[str]
    agent_version: str | None = None
    inputs_sha256: str | None = None
    base_tree: str | None = None  # the kept tree an incremental build began from
    packages: dict[str, str]
    artifacts: dict[str, Artifact]
    active: bool
    problems: list[str] = Field(default_factory=list, description=PROBLEMS)
    boot_ram_mb: int | None = Field(
        default=None,
        description="MiB of RAM a node needs to boot this image (kernel + unpacked initramfs "
        "+ squashfs + margin); null for images built before the guards.",
    )
    source_date_epoch: int | None = Field(
        default=None, description="The time every file in the artifacts carries (Unix seconds)."
    )
    firmware_packages: dict[str, str] | None = Field(
        default=None,
        description="The spec's non-free firmware packages: name -> installed version; null "
        "when the spec named no firmware.",
    )


class ImageDiff(BaseModel):
    """Package changes from image `a` to image `b`: review them before activating `b`."""

    a: str
    b: str
    added: dict[str, str] = Field(description="Packages only in b: name -> version.")
    removed: dict[str, str] = Field(description="Packages only in a: name -> version.")
    changed: dict[str, tuple[str, str]] = Field(
        description="Packages in both with another version: name -> [version in a, in b]."
    )


class ImageVerified(BaseModel):
    """Every artifact's sha256 recomputed against the image's metadata.yaml."""

    id: str
    ok: bool = Field(description="Whether every artifact matches.")
    files: dict[str, str] = Field(description="Artifact name -> ok, mismatch or missing.")


class Activated(BaseModel):
    active: str = Field(description="Id of the image nodes now boot.")
