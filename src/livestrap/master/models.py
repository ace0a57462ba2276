"""Database tables. Times are UTC epoch seconds (floats): the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, validates

SEARCH_LEN = 255  # the longest vendor, product or serial kept in its own column
SEARCH_INDEX = (
    "first_seen_at", "id", "last_seen_at", "vendor", "product", "serial", "image_id", "name",
)  # fmt: skip


def search_text(value: Any) -> str | None:
    """A string for a search column: cut to fit, a lone surrogate (stored by an older
    master) or a NUL as U+FFFD, since a text column cannot hold either."""
    if not isinstance(value, str) or not value:
        return None
    return "".join(
        "\ufffd" if "\ud800" <= c <= "\udfff" or c == "\x00" else c for c in value[:SEARCH_LEN]
    )


def search_fields(facts: Any) -> tuple[str | None, str | None, str | None]:
    """facts.system's vendor, product and serial for their columns."""
    system = facts.get("system") if isinstance(facts, dict) else None
    system = system if isinstance(system, dict) else {}
    vendor, product, serial = (search_text(system.get(k)) for k in ("vendor", "product", "serial"))
    return vendor, product, serial


class Base(DeclarativeBase):
    pass


class SettingRow(Base):
    """Named JSON documents; `build_spec` holds the spec that builds start from."""

    __tablename__ = "settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class Build(Base):
    __tablename__ = "builds"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, index=True)  # queue order
    state: Mapped[str] = mapped_column(String(16), index=True)
    stage: Mapped[str | None] = mapped_column(String(32), nullable=True)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    activate: Mapped[bool] = mapped_column(Boolean, default=False)
    force: Mapped[bool] = mapped_column(Boolean, default=False)
    image_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    reused: Mapped[bool] = mapped_column(Boolean, default=False)
    # set by the API on a running build; the worker (maybe another process) polls it
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    log_path: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class Node(Base):
    """One machine. Identity: SMBIOS UUID when sane, else its MACs (see discovery)."""

    __tablename__ = "nodes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    system_uuid: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    boot_mac: Mapped[str | None] = mapped_column(String(17), nullable=True)
    last_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    agent_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    facts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    facts_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    heartbeat_s: Mapped[int] = mapped_column(Integer)
    first_seen_at: Mapped[float] = mapped_column(Float)
    last_seen_at: Mapped[float] = mapped_column(Float, index=True)
    boots: Mapped[int] = mapped_column(Integer, default=1)
    # facts.system's strings again, for the console's search (set with the facts: below)
    vendor: Mapped[str | None] = mapped_column(String(SEARCH_LEN), nullable=True)
    product: Mapped[str | None] = mapped_column(String(SEARCH_LEN), nullable=True)
    serial: Mapped[str | None] = mapped_column(String(SEARCH_LEN), nullable=True)
    # the operator's (or a rule's) name for it: a DNS label, lower-case (migration 0006)
    # unique through the index uq_nodes_name (0006: an index, so SQLite needs no rebuild)
    name: Mapped[str | None] = mapped_column(String(63), nullable=True)

    # The list's order, and every column a search filters on: SQLite walks this index in
    # order and reads a table row (with its large facts) only for the rows it shows.
    __table_args__ = (
        Index("ix_nodes_search", *SEARCH_INDEX),
        Index("uq_nodes_name", "name", unique=True),
    )

    @validates("facts")
    def _copy_search_fields(self, _key: str, facts: Any) -> Any:
        """Whoever sets the facts (a report, a test, a benchmark) sets the columns too."""
        self.vendor, self.product, self.serial = search_fields(facts)
        return facts


class NodeMac(Base):
    """Every MAC a node has reported; a MAC belongs to one node only."""

    __tablename__ = "node_macs"
    mac: Mapped[str] = mapped_column(String(17), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)


class BootEvent(Base):
    """A step of a node's boot: a /boot request, a report, a refusal."""

    __tablename__ = "boot_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    kind: Mapped[str] = mapped_column(String(32))
    mac: Mapped[str | None] = mapped_column(String(17), nullable=True, index=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    node_id: Mapped[str | None] = mapped_column(
        ForeignKey("nodes.id", ondelete="SET NULL"), nullable=True, index=True
    )
    image_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (Index("ix_boot_events_at", "at"),)  # same name as in 0001


class ConsoleSession(Base):
    """A web console login. The cookie carries the session id; only its sha256 is kept,
    so a copy of the database logs nobody in. Logout deletes the row."""

    __tablename__ = "console_sessions"
    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


# --- node tags (migration 0006; the name is a column of Node) ---
TAG_LEN = 63


class NodeTag(Base):
    """One tag of a node (an operator's, or a rule's); the list filters on them."""

    __tablename__ = "node_tags"
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(TAG_LEN))

    __table_args__ = (
        PrimaryKeyConstraint("node_id", "tag", name="pk_node_tags"),
        Index("ix_node_tags_tag", "tag"),
    )


class NodeAction(Base):
    """An action queued for a node (master.services.actions): handed to its agent in a
    heartbeat answer at most once, then finished by the agent's result or lost."""

    __tablename__ = "node_actions"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node_id: Mapped[str] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)  # the node's queue order
    kind: Mapped[str] = mapped_column(String(16))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    output_tail: Mapped[str | None] = mapped_column(Text, nullable=True)
    took_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)

    # the heartbeat's one probe: this node's queued or delivered actions, in order; and
    # the lost sweep's: delivered actions by age
    __table_args__ = (
        Index("ix_node_actions_node_state", "node_id", "state", "seq"),
        Index("ix_node_actions_state_delivered", "state", "delivered_at"),
    )


# the webhook tables live with the webhooks; imported here so that importing the models
# puts every table on Base (webhooks.tables imports Base from here: hence at the end)
from livestrap.master.webhooks import tables as webhook_tables  # noqa: E402, F401
