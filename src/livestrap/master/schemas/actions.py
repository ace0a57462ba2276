"""Node actions: what an operator may queue, what the agent is told, what it reports back.

The set of kinds is fixed and each kind's arguments are exact (no other keys): a node
action is never a shell command. The agent checks them again (livestrap.agent); these
models are the master's check, shared by the API, the console and the CLI's messages.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, field_validator

from livestrap.master.schemas.bounds import REPLACEMENT, Text, text_safe
from livestrap.master.schemas.nodes import ActionKind as ActionKind  # with the heartbeat's
from livestrap.master.schemas.nodes import ActionOrder as ActionOrder
from livestrap.master.schemas.nodes import Readable

ActionState = Literal["queued", "delivered", "succeeded", "failed", "lost", "cancelled", "expired"]
KINDS: tuple[str, ...] = ("install", "reinspect", "reboot", "poweroff")
OPEN_STATES = ("queued", "delivered")
FINISHED_STATES = ("succeeded", "failed", "lost")
MAX_PACKAGES = 64
MAX_TAIL_CHARS = 4096  # of a result's output_tail (the agent keeps the end)
MAX_ERROR_CHARS = 500
MAX_TOOK_S = 1e7  # ~4 months: anything longer is a broken clock
# Debian's rule for a package name, less a trailing "-" (apt-get reads it as "remove")
PACKAGE_NAME = r"^[a-z0-9](?:[a-z0-9+.-]{0,98}[a-z0-9+.])?$"
PACKAGE_VERSION = r"^[A-Za-z0-9.+~:-]{1,100}$"  # Debian's version characters
_STRICT = ConfigDict(extra="forbid")


class Package(BaseModel):
    """One package to install; version None: the newest the master's repository has."""

    model_config = _STRICT
    name: str = Field(pattern=PACKAGE_NAME, max_length=100)
    version: str | None = Field(default=None, pattern=PACKAGE_VERSION, max_length=100)


class InstallArgs(BaseModel):
    model_config = _STRICT
    packages: list[Package] = Field(min_length=1, max_length=MAX_PACKAGES)


class NoArgs(BaseModel):
    """reinspect, reboot and poweroff take no arguments."""

    model_config = _STRICT


class InstallRequest(BaseModel):
    model_config = _STRICT
    kind: Literal["install"]
    args: InstallArgs


class PlainRequest(BaseModel):
    model_config = _STRICT
    kind: Literal["reinspect", "reboot", "poweroff"]
    args: NoArgs = Field(default_factory=NoArgs)


ActionRequest = Annotated[InstallRequest | PlainRequest, Field(discriminator="kind")]
ACTION_REQUEST: TypeAdapter[InstallRequest | PlainRequest] = TypeAdapter(ActionRequest)


def checked_args(kind: str, args: Any) -> dict[str, Any]:
    """The arguments as stored and sent to the agent; pydantic's ValidationError (a
    ValueError) naming the field when the kind or its arguments are not exactly right."""
    request = ACTION_REQUEST.validate_python({"kind": kind, "args": args})
    dumped: dict[str, Any] = request.args.model_dump()
    return dumped


def package_words(words: list[str]) -> list[dict[str, str | None]]:
    """`PKG` or `PKG=VERSION` words (the CLI's arguments, the console's text field) ->
    the install action's packages; ValueError for a word of neither shape. The names and
    versions themselves are checked by the models above."""
    packages: list[dict[str, str | None]] = []
    for word in words:
        name, has_version, version = word.partition("=")
        if not name or (has_version and not version):
            raise ValueError(f"{word[:100]!r}: expected PKG or PKG=VERSION")
        packages.append({"name": name, "version": version if has_version else None})
    return packages


class Selector(BaseModel):
    """Which nodes a bulk action goes to: every condition given must hold (`all` alone:
    every node). At least one of them is required, so an empty body never means "all"."""

    model_config = _STRICT
    all: bool = False
    status: Literal["online", "offline"] | None = None
    tag: Text | None = Field(default=None, min_length=1, max_length=64)
    macs: list[Annotated[Text, Field(max_length=64)]] | None = Field(
        default=None, min_length=1, max_length=10_000
    )
    ids: list[Annotated[Text, Field(min_length=1, max_length=36)]] | None = Field(
        default=None, min_length=1, max_length=10_000
    )

    def is_empty(self) -> bool:
        return not self.all and all(v is None for v in (self.status, self.tag, self.macs, self.ids))


class BulkInstall(InstallRequest):
    selector: Selector


class BulkPlain(PlainRequest):
    selector: Selector


BulkRequest = Annotated[BulkInstall | BulkPlain, Field(discriminator="kind")]


class ActionView(Readable):
    """An action as operators read it (the output tail is the node's: text made safe)."""

    id: str
    node_id: str
    kind: str
    args: dict[str, Any]
    state: ActionState
    requested_by: str
    created_at: datetime
    delivered_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    output_tail: str | None
    took_s: float | None
    error: str | None


class BulkAnswer(BaseModel):
    queued: list[ActionView]
    count: int


class ActionResult(BaseModel):
    """POST /api/v1/discovery/actions/{id}/result: what the agent reports. Keys a newer
    agent may add are ignored; text is cut to its bound and made storable."""

    node_id: str = Field(min_length=1, max_length=36)
    status: Literal["succeeded", "failed"]
    exit_code: StrictInt | None = Field(default=None, ge=-(1 << 31), le=(1 << 31) - 1)
    output_tail: str = Field(default="", max_length=MAX_TAIL_CHARS)
    took_s: float = Field(default=0.0, ge=0, le=MAX_TOOK_S)
    error: str | None = Field(default=None, max_length=MAX_ERROR_CHARS)

    @field_validator("took_s")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value

    @field_validator("output_tail", "error", mode="before")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        """A text column takes neither a NUL (PostgreSQL) nor a lone surrogate: both are
        replaced, since the output is the node's and the result must not be lost."""
        if not isinstance(value, str):
            return value
        safe: str = text_safe(value)
        return safe.replace("\x00", REPLACEMENT)


class ResultAnswer(BaseModel):
    state: ActionState
