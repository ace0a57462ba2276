"""The build spec: pydantic models shared by the CLI and the API, plus YAML loading.

A spec as written may leave most fields out; `livestrap.resolve.resolve` fills every
default (the mirror from the host's APT configuration, the distro's suite, components,
kernel and archive key) into a `ResolvedSpec`, so that what is built and recorded is
always the full effective spec. The field types live in livestrap.specfields.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from livestrap.errors import Problem, SpecError
from livestrap.kernelopts import check_kernel_options
from livestrap.specerrors import format_validation_error, validation_problems
from livestrap.specfields import (
    FIRMWARE_PACKAGES,
    RECORDED,
    Components,
    Firmware,
    HostDirs,
    HostFile,
    HostFiles,
    Name,
    Suite,
    Url,
    firmware_names,
)
from livestrap.specpaths import PathRules
from livestrap.yamlfile import parse_yaml, read_text

Distro = Literal["debian", "ubuntu"]
Compression = Literal["zstd", "xz", "lz4"]

PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?\Z")
SSH_KEY_RE = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/=]+(\s+.*)?\Z"
)
CRYPT_RE = re.compile(r"^\$[0-9a-z]+\$[^\s:]+\Z")

# Packages every image gets: the live boot path and what the agent runs on.
BASE_PACKAGES = ("live-boot", "systemd-sysv", "udev", "kmod", "python3", "zstd", "iproute2")

# The size and RAM guards' defaults (MiB; livestrap.builder.guards): the default image
# (72.5 MiB of squashfs, 271 MiB of RAM to boot) meets them with room for packages.
DEFAULT_MAX_IMAGE_MB = 512
DEFAULT_MIN_BOOT_RAM_MB = 1024


class Repo(BaseModel):
    """An extra APT repository with its pin priority and its signing key."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    uri: Url
    suite: Suite
    components: Components = Field(default_factory=lambda: ["main"])
    priority: Annotated[int, Field(ge=1, le=1000)] = 500
    key: HostFile | None = None
    trusted: bool = False
    pin: str | None = Field(
        default=None,
        description="APT pin expression, e.g. 'release o=Acme'; derived from the repo if unset",
    )

    @field_validator("pin")
    @classmethod
    def _pin(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^(origin \S+|release \S.*|version \S+)\Z", v):
            raise ValueError(
                f"{v!r} is not an APT pin ('origin HOST', 'release o=..,a=..' or 'version V')"
            )
        return v

    @model_validator(mode="after")
    def _signed(self) -> Repo:
        if self.key is None and not self.trusted:
            raise ValueError(
                f"repo {self.name!r} needs `key` (its OpenPGP public key file); "
                "set `trusted: true` only for a repo you accept unsigned"
            )
        return self


class BuildSpec(BaseModel):
    """What to build. Unset fields are filled by `livestrap.resolve.resolve`."""

    model_config = ConfigDict(extra="forbid")

    label: Name = "livestrap"
    distro: Distro = "debian"
    suite: Suite | None = None
    suites: list[Suite] | None = Field(
        default=None,
        description="the distro repository's suites, e.g. [bookworm, bookworm-updates]; "
        "default: the suite, plus its -updates suite when the host's APT sources have it",
    )
    security: bool | None = Field(
        default=None,
        description="add the distro's security repository (SUITE-security); default: "
        "yes when the host's APT sources or LIVESTRAP_SECURITY_MIRROR name one",
    )
    security_mirror: Url | None = None
    arch: Literal["amd64"] = "amd64"
    mirror: Url | None = None
    mirror_key: HostFile | None = None
    components: Components | None = None
    repos: list[Repo] = Field(default_factory=list)
    packages: list[str] = Field(default_factory=list)
    firmware: Firmware = Field(
        default_factory=list,
        description="non-free firmware to include: short names (bnx2x, qlogic, ...) of "
        "Debian's firmware-* packages, or 'all-network'; only files the kept modules "
        "reference stay in the image",
    )
    kernel: str | None = None
    kernel_options: list[str] = Field(default_factory=list)
    extra_dirs: HostDirs = Field(default_factory=list)
    scripts: HostFiles = Field(default_factory=list)
    ssh_authorized_keys: list[str] = Field(default_factory=list)
    root_password_hash: str | None = None
    compression: Compression = "zstd"
    max_image_mb: Annotated[int, Field(strict=True, ge=1, le=1 << 20)] = Field(
        default=DEFAULT_MAX_IMAGE_MB, description="largest root.squashfs the build accepts, MiB"
    )
    min_boot_ram_mb: Annotated[int, Field(strict=True, ge=1, le=1 << 24)] = Field(
        default=DEFAULT_MIN_BOOT_RAM_MB,
        description="RAM of the smallest node the image must boot on, MiB: the build fails "
        "when the image needs more",
    )
    agent: bool = Field(
        default=True, description="install the discovery agent from the master's repository"
    )

    @field_validator("packages")
    @classmethod
    def _packages(cls, v: list[str]) -> list[str]:
        bad = [p for p in v if not PACKAGE_RE.match(p)]
        if bad:
            raise ValueError(f"malformed package names: {', '.join(map(repr, bad))}")
        return list(dict.fromkeys(v))

    @field_validator("kernel")
    @classmethod
    def _kernel(cls, v: str | None) -> str | None:
        if v is not None and not PACKAGE_RE.match(v):
            raise ValueError(f"malformed package name {v!r}")
        return v

    @field_validator("kernel_options")
    @classmethod
    def _kernel_options_safe(cls, v: list[str]) -> list[str]:
        return check_kernel_options(v)  # what the iPXE renderer accepts (livestrap.kernelopts)

    @field_validator("ssh_authorized_keys")
    @classmethod
    def _ssh_keys(cls, v: list[str]) -> list[str]:
        keys = [k.strip() for k in v]
        bad = [k[:30] for k in keys if not SSH_KEY_RE.match(k)]
        if bad:
            raise ValueError(f"not an OpenSSH public key: {bad!r}")
        return keys

    @field_validator("root_password_hash")
    @classmethod
    def _hash(cls, v: str | None) -> str | None:
        if v is not None and not CRYPT_RE.match(v):
            raise ValueError("must be a crypt(3) hash such as '$y$...' (see mkpasswd)")
        return v

    @model_validator(mode="after")
    def _suites(self) -> BuildSpec:
        if self.suites is not None:
            if not self.suites:
                raise ValueError("suites must name at least one suite (or be left out)")
            if self.suite is not None and self.suites[0] != self.suite:
                raise ValueError(
                    f"suites must start with the suite {self.suite!r} (the one bootstrapped)"
                )
        if self.security is False and self.security_mirror is not None:
            raise ValueError("security_mirror is set but security is false")
        return self

    @model_validator(mode="after")
    def _firmware_distro(self) -> BuildSpec:
        if self.firmware and self.distro != "debian":
            raise ValueError(
                f"firmware names Debian's non-free-firmware packages; on {self.distro}, "
                "add its firmware package (linux-firmware) to `packages` instead"
            )
        return self

    def firmware_packages(self) -> list[str]:
        """The firmware-* packages `firmware` stands for, in the spec's order."""
        return [FIRMWARE_PACKAGES[name] for name in firmware_names(self.firmware)]

    @model_validator(mode="after")
    def _unique_repos(self) -> BuildSpec:
        names = [r.name for r in self.repos]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"repo names must be unique; repeated: {', '.join(dupes)}")
        return self

    def sha256(self) -> str:
        """Hash of the effective spec, stable across key order and YAML formatting."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()


class ResolvedSpec(BuildSpec):
    """A spec with every default filled on this host, its pins checked and (when it wants
    the agent) the master's repository added: the one input build() takes, made by
    livestrap.resolve.resolve. Frozen: the spec an image records is the spec it ran."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suite: Suite
    # `suites` stays optional and `security` has a default only for a spec queued before
    # they existed: the suite alone, no security repository; resolve() always fills both
    security: bool = False
    mirror: Url
    mirror_key: HostFile
    components: Components
    kernel: str

    def all_packages(self) -> list[str]:
        """Every package the rootfs stage installs: base set, kernel, firmware, extras."""
        firmware = self.firmware_packages()
        return list(dict.fromkeys([*BASE_PACKAGES, self.kernel, *firmware, *self.packages]))


def spec_warnings(spec: BuildSpec) -> list[str]:
    """Things that are allowed but that an operator must see, e.g. unsigned repositories."""
    return [
        f"repo {repo.name!r} is not signature-checked (trusted: true): anyone on the path "
        "to it can change what gets installed"
        for repo in spec.repos
        if repo.trusted and repo.key is None
    ]


def parse_spec(
    data: Any,
    base_dir: Path | None = None,
    source: str = "spec",
    text: str | None = None,
    rules: PathRules | None = None,
) -> BuildSpec:
    """Validate a spec mapping; relative paths are taken from `base_dir`. `text`: the YAML
    it was read from, for line numbers in the errors; `rules`: which paths it may name."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        problem = Problem("", "must be a mapping of keys to values")
        raise SpecError(f"{source} must be a mapping of keys to values", [problem])
    try:
        context = {"base_dir": base_dir or Path.cwd(), "rules": rules or PathRules()}
        return BuildSpec.model_validate(data, context=context)
    except ValidationError as err:
        message = format_validation_error(err, source, text)
        raise SpecError(message, validation_problems(err, text)) from None


def check_recorded_spec(data: Any) -> BuildSpec:
    """Validate a spec recorded in image metadata: its shape and every rule that is not
    about files on this host. Raises pydantic's ValidationError."""
    return BuildSpec.model_validate(data, context={RECORDED: True})


def load_spec(path: Path, rules: PathRules | None = None) -> BuildSpec:
    """Read and validate a YAML spec file; paths in it are relative to its folder."""
    text = read_text(path, "spec ")
    data = parse_yaml(text, str(path))
    base = path.resolve().parent
    return parse_spec(data, base_dir=base, source=str(path), text=text, rules=rules)


def spec_to_yaml(spec: BuildSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
