"""Discovery reports and node views: the agent's protocol and what operators read.

The report mirrors `livestrap.agent.report` (protocol version 1). Facts stay open to
new keys (a newer agent may collect more), but the parts the master reads for identity
(system.uuid, nics[].mac) are typed, so a malformed body is a 422, never a 500.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
    model_validator,
)

from livestrap.master.events import normalize_mac
from livestrap.master.schemas.bounds import check_bounds, text_safe
from livestrap.master.schemas.drivers import DeviceStatus

NodeStatus = Literal["online", "offline"]
MAX_UPTIME_S = 1 << 40  # ~35,000 years; a larger int breaks the float arithmetic of boots


def finite_only(value: Any) -> Any:
    """`value` with NaN/Infinity replaced by None: Python's JSON parser accepts them, but
    no JSON answer can carry them (and one odd sensor must not keep a node unregistered)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_only(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite_only(item) for item in value]
    return value


class SystemFacts(BaseModel):
    """SMBIOS identity of the box (collect_system); other keys are kept as sent."""

    model_config = ConfigDict(extra="allow")
    vendor: str | None = None
    product: str | None = None
    serial: str | None = None
    uuid: str | None = None


class NicFacts(BaseModel):
    """One physical NIC (collect_nics); only `mac` matters for identity."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    mac: str | None = None


class Facts(BaseModel):
    """Everything the agent collected: system, cpu, memory, disks, nics, pci, ..."""

    model_config = ConfigDict(extra="allow")
    system: SystemFacts | None = None
    nics: list[NicFacts] | None = None


class Failure(BaseModel):
    """A collector that could not do its work on this node (other keys are dropped)."""

    collector: str
    error: str


MAX_OPEN_ACTIONS = 40
ActionId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f-]{1,36}$")]


class DiscoveryReport(BaseModel):
    """POST /api/v1/discovery body: a first report (with facts) or a heartbeat (without)."""

    agent_version: str | None = Field(default=None, max_length=64)
    image_id: str | None = Field(default=None, max_length=100)
    boot_mac: str | None = Field(default=None, description="PXE NIC (BOOTIF=), any MAC format")
    node_id: str | None = Field(default=None, max_length=36)
    facts_hash: str | None = Field(default=None, max_length=64)
    facts: Facts | None = None
    failures: list[Failure] = Field(default_factory=list)
    uptime_s: StrictInt | None = Field(default=None, ge=0, le=MAX_UPTIME_S)
    # the actions the agent holds (running, queued on the node, result not yet accepted);
    # None: an agent older than the field (services.actions.claim says what it changes)
    open_actions: list[ActionId] | None = Field(default=None, max_length=MAX_OPEN_ACTIONS)

    @model_validator(mode="before")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        check_bounds(value)  # depth, size and valid Unicode, before anything else looks
        return value

    @field_validator("boot_mac")
    @classmethod
    def _mac(cls, value: str | None) -> str | None:
        if value is None:
            return None
        mac = normalize_mac(value)
        if mac is None:
            raise ValueError(f"not a MAC address: {value!r}")
        return mac

    @field_validator("node_id")
    @classmethod
    def _node_id(cls, value: str | None) -> str | None:
        return value or None  # "" is what the master answers before it knows the node

    @field_validator("agent_version", "image_id", "node_id", "facts_hash")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        """These land in text columns, and PostgreSQL's text cannot hold a NUL (a 500 the
        fuzz test found); facts are JSON, where an escaped NUL is kept."""
        if value is not None and "\x00" in value:
            raise ValueError("holds a NUL character")
        return value

    @field_validator("facts", mode="before")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        return finite_only(value)

    def facts_dict(self) -> dict[str, Any] | None:
        """The facts as sent (no defaults added), the form stored and hashed by the agent."""
        return None if self.facts is None else self.facts.model_dump(exclude_unset=True)


class ErrorDetail(BaseModel):
    """Every refusal: `{"detail": "..."}` (master.errors)."""

    detail: str


ActionKind = Literal["install", "reinspect", "reboot", "poweroff"]


class ActionOrder(BaseModel):
    """One node action in a heartbeat answer (master.services.actions): the agent runs
    it, then posts its result to /api/v1/discovery/actions/{id}/result."""

    id: str
    kind: ActionKind
    args: dict[str, Any]


class ReportAnswer(BaseModel):
    """What the agent needs back; `node_id` is "" when the master wants facts first.
    `actions`: at most one today (an agent takes up to 8, run one at a time, in order)."""

    node_id: str
    heartbeat_s: int
    facts_required: bool
    actions: list[ActionOrder] = Field(default_factory=list)


class Readable(BaseModel):
    """An answer built from stored rows: text a JSON answer cannot carry is replaced."""

    @model_validator(mode="before")
    @classmethod
    def _readable(cls, value: Any) -> Any:
        return text_safe(value)


class NodeSummary(Readable):
    """One row of GET /api/v1/nodes."""

    id: str
    status: NodeStatus
    system_uuid: str | None
    vendor: str | None
    product: str | None
    serial: str | None
    boot_mac: str | None
    last_ip: str | None
    image_id: str | None
    agent_version: str | None
    boots: int
    first_seen_at: datetime
    last_seen_at: datetime
    name: str | None = None  # a DNS label the operator (or a rule) gave it
    tags: list[str] = Field(default_factory=list)


class NodeDetail(NodeSummary):
    """GET /api/v1/nodes/{id}: the summary plus everything the node reported."""

    macs: list[str]
    heartbeat_s: int
    facts_hash: str | None
    facts: dict[str, Any]
    failures: list[dict[str, Any]]
    driver_gaps: list[DeviceStatus] | None = Field(
        default=None,
        description="The node's NICs and storage controllers the active image has no driver "
        "or no firmware for (the machine that would fail its next boot); null: not known "
        "(no active image, one built before coverage was recorded, or no PCI facts).",
    )


class TimelineEvent(Readable):
    """One step of a boot: a /boot request, a report, a refusal (see master.events)."""

    kind: str
    at: datetime
    mac: str | None
    ip: str | None
    image_id: str | None
    detail: dict[str, Any]
