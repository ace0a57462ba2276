"""The build spec's field types: names, suites, components, and what names the build host.

`HostPath` (a file or a folder) and `HostUrl` (a repository URL, whose file:// and
copy:// forms name a folder) are both a field's validator and its mark. Whatever reads
what a spec names walks the model for these marks (`host_inputs`): the build-input
fingerprint hashes every marked file, the build worker re-checks every marked path. A
new file-valued field is found by both without a list edited by hand, so it cannot be
forgotten (a forgotten field would silently reuse a stale image).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, GetCoreSchemaHandler, ValidationInfo
from pydantic_core import CoreSchema, core_schema

from livestrap.errors import SpecError
from livestrap.specpaths import LOCAL_SCHEMES, PathRules, check_local_url, check_path

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}\Z")
SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*\Z")
COMPONENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]*\Z")

# validation context key: the spec is a record (an imported image's metadata, or a spec
# already checked when it was parsed), checked for its shape only: its file paths were
# checked by whoever parsed it, or name files on the host that built it
RECORDED = "recorded"


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


def _rules(context: dict[str, Any]) -> PathRules:
    """Which paths and local URLs this caller may name (see livestrap.specpaths)."""
    rules = context.get("rules")
    return rules if isinstance(rules, PathRules) else PathRules()


@dataclass(frozen=True)
class HostPath:
    """Marks (and checks) a field naming a file or folder of the build host, or a list of
    them: relative paths are taken from the context's `base_dir`, then resolved and held
    to its `rules` before their existence is tested (no probing outside)."""

    kind: Literal["file", "dir"]

    def check(self, value: Path, rules: PathRules, base_dir: Path | None = None) -> Path:
        try:
            path = value.expanduser()
        except RuntimeError:  # `~nobody-here/x`: no such user (found by the API fuzz test)
            raise ValueError(f"{value}: no such home directory") from None
        if not path.is_absolute():
            path = (base_dir or Path.cwd()) / path
        path = check_path(path, rules)
        if self.kind == "dir" and not path.is_dir():
            raise ValueError(f"directory {path} does not exist")
        if self.kind == "file" and not path.is_file():
            raise ValueError(f"file {path} does not exist")
        return path

    def _validate(self, value: Any, info: ValidationInfo) -> Any:
        context = info.context or {}
        if context.get(RECORDED):
            return value
        rules, base = _rules(context), context.get("base_dir")
        base_dir = Path(base) if base is not None else None
        if isinstance(value, list):
            return [self.check(p, rules, base_dir) for p in value]
        return self.check(value, rules, base_dir)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.with_info_after_validator_function(self._validate, handler(source))


@dataclass(frozen=True)
class HostUrl:
    """Marks (and checks) a repository URL: its file:// and copy:// forms name a folder
    of the build host, held to the context's rules (recorded specs included)."""

    def check(self, value: str, rules: PathRules) -> str:
        return check_local_url(check_url(value), rules)

    def _validate(self, value: str, info: ValidationInfo) -> str:
        return self.check(value, _rules(info.context or {}))

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.with_info_after_validator_function(self._validate, handler(source))


def _name(value: str) -> str:
    if not NAME_RE.match(value):
        raise ValueError(f"{value!r} must be lower-case letters, digits, '.', '_' or '-'")
    return value


def _suite(value: str) -> str:
    if not SUITE_RE.match(value):
        raise ValueError(f"{value!r} is not a valid suite name")
    return value


def _components(value: list[str]) -> list[str]:
    bad = [c for c in value if not COMPONENT_RE.match(c)]
    if bad or not value:
        raise ValueError(f"invalid components {bad or value!r}")
    return value


# Firmware a spec may name (`firmware: [bnx2x, ...]`): short name -> Debian's package in
# the non-free-firmware component, for the wired NICs and storage controllers a
# discovery image keeps drivers for (graphics, sound and wireless firmware would only
# be pruned again: their modules are dropped, see builder.slim).
FIRMWARE_PACKAGES: dict[str, str] = {
    "bnx2": "firmware-bnx2",  # Broadcom NetXtreme II 1 Gb (bnx2, cnic)
    "bnx2x": "firmware-bnx2x",  # Broadcom NetXtreme II 10 Gb (bnx2x)
    "cavium": "firmware-cavium",  # Cavium LiquidIO NICs, Nitrox crypto
    "misc-nonfree": "firmware-misc-nonfree",  # Intel E810 DDP (ice), Chelsio cxgb3/4, tg3, ...
    "myricom": "firmware-myricom",  # Myri-10G (myri10ge)
    "netronome": "firmware-netronome",  # Netronome Agilio (nfp)
    "netxen": "firmware-netxen",  # QLogic NetXen 3000/3100 (netxen_nic)
    "qlogic": "firmware-qlogic",  # QLogic FastLinQ (qed/qede), FC HBAs (qla2xxx), qla1280
    "realtek": "firmware-realtek",  # Realtek RTL8111/8168/8125 onboard NICs (r8169)
}
# `firmware: all-network`: the firmware Debian's live-task-non-free-firmware-server
# recommends for server network and storage devices (bnx2, bnx2x, cavium, myricom,
# netronome, netxen, qlogic), plus realtek (onboard NICs) and misc-nonfree (Intel E810's
# DDP package, Chelsio, older Broadcom tg3).
ALL_NETWORK = "all-network"
ALL_NETWORK_FIRMWARE = (
    "bnx2", "bnx2x", "cavium", "misc-nonfree", "myricom", "netronome", "netxen", "qlogic",
    "realtek",
)  # fmt: skip
FIRMWARE_COMPONENT = "non-free-firmware"


def _firmware(value: list[str] | str) -> list[str] | str:
    """A list of known short names (no repeats, order kept), or ALL_NETWORK."""
    if isinstance(value, str):
        if value != ALL_NETWORK:
            raise ValueError(f"{value!r}: give a list of firmware names or {ALL_NETWORK!r}")
        return value
    known = ", ".join(FIRMWARE_PACKAGES)
    for name in value:
        if name in FIRMWARE_PACKAGES:
            continue
        short = name.removeprefix("firmware-")
        hint = f" (write {short!r})" if short in FIRMWARE_PACKAGES else ""
        raise ValueError(
            f"unknown firmware {name[:40]!r}{hint}; known: {known}, or {ALL_NETWORK!r}"
        )
    return list(dict.fromkeys(value))


def firmware_names(value: list[str] | str) -> tuple[str, ...]:
    """The short names a checked `firmware` value stands for."""
    return ALL_NETWORK_FIRMWARE if value == ALL_NETWORK else tuple(value)


Name = Annotated[str, AfterValidator(_name)]
Suite = Annotated[str, AfterValidator(_suite)]
Components = Annotated[list[str], AfterValidator(_components)]
Url = Annotated[str, HostUrl()]
HostFile = Annotated[Path, HostPath("file")]
HostFiles = Annotated[list[Path], HostPath("file")]
HostDirs = Annotated[list[Path], HostPath("dir")]
Firmware = Annotated[list[str] | str, AfterValidator(_firmware)]

Mark = HostPath | HostUrl


@dataclass(frozen=True)
class HostInput:
    """One thing a spec names on the build host: where (as errors name it), what, its mark."""

    loc: str
    value: Path | str
    mark: Mark


def _mark(annotation: Any) -> Mark | None:
    """The mark anywhere in a field's type (`HostFile | None`, lists, Annotated)."""
    for arg in get_args(annotation):
        if isinstance(arg, HostPath | HostUrl):
            return arg
        found = _mark(arg)
        if found is not None:
            return found
    return None


def host_inputs(model: BaseModel, loc: str = "") -> Iterator[HostInput]:
    """Every value of a marked field, in nested models too (a repo's key and URL)."""
    for name, field in type(model).model_fields.items():
        where = f"{loc}.{name}" if loc else name
        value = getattr(model, name)
        mark = next((m for m in field.metadata if isinstance(m, HostPath | HostUrl)), None)
        mark = mark or _mark(field.annotation)
        items = value if isinstance(value, list) else [value]
        if mark is not None:
            yield from (HostInput(where, item, mark) for item in items if item is not None)
            continue
        for i, item in enumerate(items):
            if isinstance(item, BaseModel):
                yield from host_inputs(item, f"{where}[{i}]" if item is not value else where)


def _types(annotation: Any) -> Iterator[Any]:
    """The annotation and every type inside it (unions, lists, Annotated)."""
    yield annotation
    for arg in get_args(annotation):
        yield from _types(arg)


@functools.cache
def unmarked_paths(model: type[BaseModel]) -> tuple[str, ...]:
    """The fields (nested models too) typed with a Path but carrying no HostPath mark:
    `host_inputs` would not find them, so the fingerprint would miss their files."""
    found: list[str] = []

    def walk(cls: type[BaseModel], loc: str, seen: frozenset[type[BaseModel]]) -> None:
        for name, field in cls.model_fields.items():
            where = f"{loc}.{name}" if loc else name
            marked = any(isinstance(m, HostPath | HostUrl) for m in field.metadata)
            types = [t for t in _types(field.annotation) if isinstance(t, type)]
            if not (marked or _mark(field.annotation)) and any(
                issubclass(t, PurePath) for t in types
            ):
                found.append(where)
            for sub in types:
                if issubclass(sub, BaseModel) and sub not in seen:
                    walk(sub, where, seen | {sub})

    walk(model, "", frozenset({model}))
    return tuple(found)


def recheck_host_inputs(model: BaseModel, rules: PathRules, source: str = "spec") -> None:
    """Hold every path and local URL a checked spec names to `rules` again (they name
    places that may have changed since, e.g. a folder swapped for a link); SpecError
    with one line per field that fails."""
    problems: dict[str, str] = {}
    for item in host_inputs(model):
        try:
            if isinstance(item.mark, HostPath):
                item.mark.check(Path(item.value), rules)
            else:
                item.mark.check(str(item.value), rules)
        except ValueError as err:
            problems.setdefault(item.loc, str(err))
    if problems:
        lines = [f"  {loc}: {msg}" for loc, msg in problems.items()]
        raise SpecError("\n".join([f"{source} is invalid:", *lines]))
