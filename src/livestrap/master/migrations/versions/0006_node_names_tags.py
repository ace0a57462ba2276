"""Node names and tags: `nodes.name` (a unique DNS label, lower-case) and `node_tags`;
the list's covering index gains the name, so a name filter stays an index scan.
The name's uniqueness is a unique index, not a constraint: adding a constraint makes
Alembic rebuild `nodes` on SQLite (copy, drop, rename), and the drop would take the
rows that point at a node (MACs, boot events, actions) with it.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

OLD_INDEX = ("first_seen_at", "id", "last_seen_at", "vendor", "product", "serial", "image_id")
NEW_INDEX = (*OLD_INDEX, "name")  # models.SEARCH_INDEX


def upgrade() -> None:
    op.drop_index("ix_nodes_search", "nodes")
    op.add_column("nodes", sa.Column("name", sa.String(63), nullable=True))
    op.create_index("uq_nodes_name", "nodes", ["name"], unique=True)
    op.create_index("ix_nodes_search", "nodes", list(NEW_INDEX))
    op.create_table(
        "node_tags",
        sa.Column("node_id", sa.String(36), sa.ForeignKey("nodes.id", ondelete="CASCADE")),
        sa.Column("tag", sa.String(63)),
        sa.PrimaryKeyConstraint("node_id", "tag", name="pk_node_tags"),
    )
    op.create_index("ix_node_tags_tag", "node_tags", ["tag"])


def downgrade() -> None:
    op.drop_index("ix_node_tags_tag", "node_tags")
    op.drop_table("node_tags")
    op.drop_index("ix_nodes_search", "nodes")
    op.drop_index("uq_nodes_name", "nodes")
    op.drop_column("nodes", "name")  # SQLite >= 3.35 drops a column in place
    op.create_index("ix_nodes_search", "nodes", list(OLD_INDEX))
