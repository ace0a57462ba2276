"""metadata.yaml: what an image is, how it was built, and the checksums of its files.

Metadata comes from bundles too, so it is read as hostile: bounded size, no YAML anchors
or aliases, the recorded spec checked as a build spec, kernel options by the one rule.

The last two rules are newer than some stored images. New metadata (a build's, a bundle's)
must keep them; an image already in the store that breaks one is still read (`stored`),
its problems noted instead (`stored_problems`), so it stays listed and can be deleted.
Whatever serves it keeps its own checks: the iPXE renderer refuses such kernel options.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from livestrap.errors import StoreError
from livestrap.kernelopts import check_kernel_options
from livestrap.spec import check_recorded_spec
from livestrap.store.coverage import DriverCoverage
from livestrap.yamlfile import PlainDumper, load_plain_yaml_fast

METADATA = "metadata.yaml"
ARTIFACTS = ("vmlinuz", "initrd.img", "root.squashfs")
IMAGE_FILES = (*ARTIFACTS, METADATA)
SBOM = "sbom.cdx.json"
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
MAX_SBOM_SIZE = 64 << 20  # served from memory; a real one is well under 10 MB
# artifacts newer than some stored images: checksummed like the rest when present
OPTIONAL_ARTIFACTS = (SBOM,)
KNOWN_FILES = (*IMAGE_FILES, *OPTIONAL_ARTIFACTS)
IMAGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
CHUNK = 1 << 20
MAX_METADATA_SIZE = 1 << 20
# validation context key of a stored image's metadata: the list its problems go to
STORED = "stored_problems"
MAX_PROBLEM_CHARS = 300
# fields whose newer rule the boot script needs too: /boot/ipxe cannot render an image
# that breaks one, so it is never activated (a problem names its field first)
BOOT_FIELDS = ("kernel_cmdline",)
T = TypeVar("T")


def _problem(field: str, err: ValueError) -> str:
    """One line naming what a stored image breaks (pydantic's errors are many lines)."""
    if isinstance(err, ValidationError):
        errors = err.errors()
        first = errors[0]
        where = ".".join(str(p) for p in first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        text = f"{field}: {where + ': ' if where else ''}{first['msg']}{more}"
    else:
        text = f"{field}: {err}"
    text = " ".join(text.split())
    return text if len(text) <= MAX_PROBLEM_CHARS else text[: MAX_PROBLEM_CHARS - 3] + "..."


def _newer_rule(info: ValidationInfo, field: str, check: Callable[[T], object], value: T) -> T:
    """`value`, checked by a rule older images may break: refused in new metadata, noted
    as a problem (context STORED) in a stored image's."""
    try:
        check(value)
    except ValueError as err:
        problems = (info.context or {}).get(STORED)
        if problems is None:
            raise
        problems.append(_problem(field, err))
    return value


def check_image_id(image_id: str) -> str:
    """Image ids become directory names: refuse anything that is not a plain name."""
    if not IMAGE_ID_RE.fullmatch(image_id) or image_id in (".", ".."):
        raise StoreError(f"invalid image id {image_id!r}")
    return image_id


class Artifact(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str
    size: int


class ImageMetadata(BaseModel):
    """DESIGN.md §5. `spec` is the full effective spec as a plain mapping."""

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
    # MiB of RAM a node needs to boot it (builder.guards); None: built before the guards
    boot_ram_mb: int | None = None
    source_date_epoch: int | None = None  # the time every file in the artifacts carries
    base_tree: str | None = None  # the kept tree's base key an incremental build began from
    packages: dict[str, str]
    # the spec's firmware-* packages -> installed version; None: the spec named none
    firmware_packages: dict[str, str] | None = None
    artifacts: dict[str, Artifact]
    # the PCI devices its kernel modules claim, and the firmware they lack (builder.coverage);
    # None: built before it was recorded
    driver_coverage: DriverCoverage | None = None
    _problems: list[str] = PrivateAttr(default_factory=list)

    @property
    def stored_problems(self) -> list[str]:
        """The newer rules a stored image breaks (empty: it keeps them all)."""
        return self._problems

    @property
    def boot_problems(self) -> list[str]:
        """The stored problems that keep /boot/ipxe from rendering this image."""
        return [p for p in self._problems if p.split(":", 1)[0] in BOOT_FIELDS]

    @field_validator("id")
    @classmethod
    def _id(cls, v: str) -> str:
        if not IMAGE_ID_RE.fullmatch(v):  # fullmatch: `$` alone lets "id\n" through
            raise ValueError(f"invalid image id {v!r}")
        return v

    @field_validator("spec")
    @classmethod
    def _spec(cls, v: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # kept as written: spec_sha256 and round trips stay exact
        return _newer_rule(info, "spec", check_recorded_spec, v)

    @field_validator("kernel_cmdline")
    @classmethod
    def _kernel_cmdline(cls, v: list[str], info: ValidationInfo) -> list[str]:
        return _newer_rule(info, "kernel_cmdline", check_kernel_options, v)

    @field_validator("artifacts")
    @classmethod
    def _artifacts(cls, v: dict[str, Artifact]) -> dict[str, Artifact]:
        if not set(ARTIFACTS) <= set(v) <= {*ARTIFACTS, *OPTIONAL_ARTIFACTS}:
            raise ValueError(
                f"artifacts must be {', '.join(ARTIFACTS)}, "
                f"and optionally {', '.join(OPTIONAL_ARTIFACTS)}"
            )
        return v

    def total_size(self) -> int:
        return sum(a.size for a in self.artifacts.values())

    def files(self) -> tuple[str, ...]:
        """Every file of this image's directory, in a fixed order (metadata first)."""
        return (METADATA, *(n for n in (*ARTIFACTS, *OPTIONAL_ARTIFACTS) if n in self.artifacts))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def describe_artifacts(image_dir: Path) -> dict[str, Artifact]:
    """The boot files, and the optional artifacts the image dir holds."""
    names = [*ARTIFACTS, *(n for n in OPTIONAL_ARTIFACTS if (image_dir / n).is_file())]
    return {
        name: Artifact(sha256=sha256_file(image_dir / name), size=(image_dir / name).stat().st_size)
        for name in names
    }


def dump_metadata(meta: ImageMetadata) -> str:
    return yaml.dump(meta.model_dump(mode="json"), Dumper=PlainDumper, sort_keys=False)


def parse_metadata(text: str, source: str = METADATA, *, stored: bool = False) -> ImageMetadata:
    """Metadata by every rule; `stored` (an image already in the store): the newer rules
    it breaks are noted in `stored_problems` rather than refused."""
    if len(text) > MAX_METADATA_SIZE:
        raise StoreError(f"{source} is larger than {MAX_METADATA_SIZE} bytes")
    problems: list[str] = []
    try:
        meta = ImageMetadata.model_validate(
            load_plain_yaml_fast(text), context={STORED: problems} if stored else None
        )
    except (yaml.YAMLError, ValidationError) as err:
        raise StoreError(f"{source} is not valid image metadata: {err}") from None
    meta._problems = problems
    return meta


def read_metadata(image_dir: Path, *, stored: bool = False) -> ImageMetadata:
    path = image_dir / METADATA
    try:
        text = path.read_text()
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from None
    return parse_metadata(text, str(path), stored=stored)


def check_artifacts(image_dir: Path, meta: ImageMetadata) -> dict[str, str]:
    """Each artifact the metadata lists: "ok", "mismatch" (size or sha256) or "missing"."""
    status = {}
    for name, art in meta.artifacts.items():
        path = image_dir / name
        if not path.is_file():
            status[name] = "missing"
        elif path.stat().st_size != art.size or sha256_file(path) != art.sha256:
            status[name] = "mismatch"
        else:
            status[name] = "ok"
    return status


def verify_artifacts(image_dir: Path, meta: ImageMetadata) -> list[str]:
    """Names of artifacts whose size or sha256 does not match the metadata."""
    return [name for name, s in check_artifacts(image_dir, meta).items() if s != "ok"]
