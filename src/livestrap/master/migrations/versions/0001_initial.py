"""Initial schema: settings, builds, nodes, node MACs, boot events.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "settings",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
    )
    op.create_table(
        "builds",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("stage", sa.String(32), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("activate", sa.Boolean(), nullable=False),
        sa.Column("force", sa.Boolean(), nullable=False),
        sa.Column("image_id", sa.String(100), nullable=True),
        sa.Column("reused", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("log_path", sa.String(500), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=True),
        sa.Column("finished_at", sa.Float(), nullable=True),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("system_uuid", sa.String(64), nullable=True, unique=True),
        sa.Column("boot_mac", sa.String(17), nullable=True),
        sa.Column("last_ip", sa.String(64), nullable=True),
        sa.Column("image_id", sa.String(100), nullable=True),
        sa.Column("agent_version", sa.String(64), nullable=True),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("facts_hash", sa.String(64), nullable=True),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("heartbeat_s", sa.Integer(), nullable=False),
        sa.Column("first_seen_at", sa.Float(), nullable=False),
        sa.Column("last_seen_at", sa.Float(), nullable=False, index=True),
        sa.Column("boots", sa.Integer(), nullable=False),
    )
    op.create_table(
        "node_macs",
        sa.Column("mac", sa.String(17), primary_key=True),
        sa.Column(
            "node_id",
            sa.String(36),
            sa.ForeignKey("nodes.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
    )
    op.create_table(
        "boot_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.Float(), nullable=False, index=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("mac", sa.String(17), nullable=True, index=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column(
            "node_id",
            sa.String(36),
            sa.ForeignKey("nodes.id", ondelete="SET NULL"),
            nullable=True,
            index=True,
        ),
        sa.Column("image_id", sa.String(100), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    for table in ("boot_events", "node_macs", "nodes", "builds", "settings"):
        op.drop_table(table)
