"""The build spec: pydantic models shared by the CLI and the API, plus YAML loading.

A spec as written may leave most fields out; `resolve_spec` fills every default (the
mirror from the host's APT configuration, the distro's suite, components, kernel and
archive key) so that what is built and recorded is always the full effective spec.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from livestrap.errors import SpecError
from livestrap.kernelopts import check_kernel_options
from livestrap.mirror import SourceEntry, find_distro_source, host_sources
from livestrap.specerrors import format_validation_error
from livestrap.specpaths import PathRules, check_local_url, check_path
from livestrap.yamlfile import parse_yaml, read_text

Distro = Literal["debian", "ubuntu"]
Compression = Literal["zstd", "xz", "lz4"]

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
PACKAGE_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(=[A-Za-z0-9.+~:-]+)?\Z")
SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
SSH_KEY_RE = re.compile(
    r"^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+)\s+[A-Za-z0-9+/=]+(\s+.*)?\Z"
)
CRYPT_RE = re.compile(r"^\$[0-9a-z]+\$[^\s:]+\Z")

# Packages every image gets: the live boot path and what the agent runs on.
BASE_PACKAGES = ("live-boot", "systemd-sysv", "udev", "kmod", "python3", "zstd", "iproute2")

DISTRO_DEFAULTS: dict[str, dict[str, Any]] = {
    "debian": {
        "suite": "bookworm",
        "components": ["main"],
        "kernel": "linux-image-amd64",
        "keyring": "/usr/share/keyrings/debian-archive-keyring.gpg",
    },
    "ubuntu": {
        "suite": "noble",
        "components": ["main", "universe"],
        "kernel": "linux-image-generic",
        "keyring": "/usr/share/keyrings/ubuntu-archive-keyring.gpg",
    },
}


LOCAL_SCHEMES = ("file", "copy")


def check_url(value: str) -> str:
    """Accept http(s) URLs with a host, and file:// or copy:// (APT copies the files into
    its cache, which a build chroot needs) with an absolute path; strip trailing '/'."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https", *LOCAL_SCHEMES):
        raise ValueError(f"{value!r} is not an http://, https://, file:// or copy:// URL")
    if parts.scheme not in LOCAL_SCHEMES and not parts.hostname:
        raise ValueError(f"{value!r} has no host")
    if parts.scheme in LOCAL_SCHEMES and not parts.path.startswith("/"):
        raise ValueError(f"{value!r} needs an absolute path")
    if any(c.isspace() for c in value):
        raise ValueError(f"{value!r} contains white space")
    return value.rstrip("/")


# validation context key: the spec is a record (an imported image's metadata), checked for
# its shape only; its file paths name files on the host that built it, so none is checked
RECORDED = "recorded"


def _base_dir(info: ValidationInfo) -> Path:
    ctx = info.context or {}
    return Path(ctx.get("base_dir", Path.cwd()))


def _rules(info: ValidationInfo) -> PathRules:
    """Which paths and local URLs this caller may name (see livestrap.specpaths)."""
    rules = (info.context or {}).get("rules")
    return rules if isinstance(rules, PathRules) else PathRules()


def _existing_path(value: Path, info: ValidationInfo, kind: str) -> Path:
    if (info.context or {}).get(RECORDED):  # a recorded spec: its paths were on another host
        return value
    path = value.expanduser()
    if not path.is_absolute():
        path = _base_dir(info) / path
    path = check_path(path, _rules(info))  # resolved; before existence: no probing outside
    if kind == "dir" and not path.is_dir():
        raise ValueError(f"directory {path} does not exist")
    if kind == "file" and not path.is_file():
        raise ValueError(f"file {path} does not exist")
    return path


class Repo(BaseModel):
    """An extra APT repository with its pin priority and its signing key."""

    model_config = ConfigDict(extra="forbid")

    name: str
    uri: str
    suite: str
    components: list[str] = Field(default_factory=lambda: ["main"])
    priority: Annotated[int, Field(ge=1, le=1000)] = 500
    key: Path | None = None
    trusted: bool = False
    pin: str | None = Field(
        default=None,
        description="APT pin expression, e.g. 'release o=Acme'; derived from the repo if unset",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r} must be lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("uri")
    @classmethod
    def _uri(cls, v: str, info: ValidationInfo) -> str:
        return check_local_url(check_url(v), _rules(info))

    @field_validator("suite")
    @classmethod
    def _suite(cls, v: str) -> str:
        if not SUITE_RE.match(v):
            raise ValueError(f"{v!r} is not a valid suite name")
        return v

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str]) -> list[str]:
        bad = [c for c in v if not COMPONENT_RE.match(c)]
        if bad or not v:
            raise ValueError(f"invalid components {bad or v!r}")
        return v

    @field_validator("key")
    @classmethod
    def _key(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else _existing_path(v, info, "file")

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
    """What to build. Unset fields are filled by `resolve_spec` (see DISTRO_DEFAULTS)."""

    model_config = ConfigDict(extra="forbid")

    label: str = "livestrap"
    distro: Distro = "debian"
    suite: str | None = None
    arch: Literal["amd64"] = "amd64"
    mirror: str | None = None
    mirror_key: Path | None = None
    components: list[str] | None = None
    repos: list[Repo] = Field(default_factory=list)
    packages: list[str] = Field(default_factory=list)
    kernel: str | None = None
    kernel_options: list[str] = Field(default_factory=list)
    extra_dirs: list[Path] = Field(default_factory=list)
    scripts: list[Path] = Field(default_factory=list)
    ssh_authorized_keys: list[str] = Field(default_factory=list)
    root_password_hash: str | None = None
    compression: Compression = "zstd"
    agent: bool = Field(
        default=True, description="install the discovery agent from the master's repository"
    )

    @field_validator("label")
    @classmethod
    def _label(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError(f"{v!r} must be lower-case letters, digits, '.', '_' or '-'")
        return v

    @field_validator("suite")
    @classmethod
    def _suite(cls, v: str | None) -> str | None:
        if v is not None and not SUITE_RE.match(v):
            raise ValueError(f"{v!r} is not a valid suite name")
        return v

    @field_validator("mirror")
    @classmethod
    def _mirror(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else check_local_url(check_url(v), _rules(info))

    @field_validator("mirror_key")
    @classmethod
    def _mirror_key(cls, v: Path | None, info: ValidationInfo) -> Path | None:
        return None if v is None else _existing_path(v, info, "file")

    @field_validator("components")
    @classmethod
    def _components(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or not all(COMPONENT_RE.match(c) for c in v)):
            raise ValueError(f"invalid components {v!r}")
        return v

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

    @field_validator("extra_dirs")
    @classmethod
    def _extra_dirs(cls, v: list[Path], info: ValidationInfo) -> list[Path]:
        return [_existing_path(p, info, "dir") for p in v]

    @field_validator("scripts")
    @classmethod
    def _scripts(cls, v: list[Path], info: ValidationInfo) -> list[Path]:
        return [_existing_path(p, info, "file") for p in v]

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

    def all_packages(self) -> list[str]:
        """Every package the rootfs stage installs: base set, kernel, then extras."""
        assert self.kernel is not None, "resolve the spec first"
        return list(dict.fromkeys([*BASE_PACKAGES, self.kernel, *self.packages]))


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
        raise SpecError(f"{source} must be a mapping of keys to values")
    try:
        context = {"base_dir": base_dir or Path.cwd(), "rules": rules or PathRules()}
        return BuildSpec.model_validate(data, context=context)
    except ValidationError as err:
        raise SpecError(format_validation_error(err, source, text)) from None


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


def resolve_spec(
    spec: BuildSpec,
    *,
    environ: dict[str, str] | None = None,
    apt_root: Path = Path("/"),
) -> BuildSpec:
    """Fill every default: mirror (spec > LIVESTRAP_MIRROR > host APT), key, suite, kernel."""
    env = os.environ if environ is None else environ
    defaults = DISTRO_DEFAULTS[spec.distro]
    host: SourceEntry | None = find_distro_source(host_sources(apt_root), spec.distro)
    if spec.mirror:
        mirror: str | None = spec.mirror
    elif env.get("LIVESTRAP_MIRROR"):
        try:
            mirror = check_url(env["LIVESTRAP_MIRROR"])
        except ValueError as err:
            raise SpecError(f"LIVESTRAP_MIRROR: {err}") from None
    else:
        mirror = host.uri if host else None
    if not mirror:
        raise SpecError(
            f"no mirror for distro {spec.distro}: set `mirror` in the spec or "
            f"LIVESTRAP_MIRROR, or add a {spec.distro} entry to the host's APT sources"
        )
    try:
        mirror = check_url(mirror)
    except ValueError as err:
        origin = host.origin_file if host else "host APT sources"
        raise SpecError(f"mirror from {origin}: {err}; set `mirror` or LIVESTRAP_MIRROR") from None
    key = spec.mirror_key
    if key is None:
        candidates = [host.signed_by] if host and host.signed_by else []
        candidates.append(defaults["keyring"])
        key = next((Path(c) for c in candidates if Path(c).is_file()), None)
    if key is None:
        raise SpecError(
            f"no archive key for distro {spec.distro}: set `mirror_key` to the archive "
            f"keyring file (tried {', '.join(candidates)})"
        )
    suite = spec.suite or (host.suites[0] if host else defaults["suite"])
    return spec.model_copy(
        update={
            "mirror": mirror,
            "mirror_key": key,
            "suite": suite,
            "components": spec.components or list(defaults["components"]),
            "kernel": spec.kernel or defaults["kernel"],
        }
    )


def spec_to_yaml(spec: BuildSpec) -> str:
    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
