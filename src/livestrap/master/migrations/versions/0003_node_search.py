"""Node search: the SMBIOS vendor, product and serial as plain columns, so the console's
filters are an index scan, not a JSON parse of every node's facts (docs/benchmarks.md).

Revision ID: 0003
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

COLUMNS = ("vendor", "product", "serial")
MAX_LEN = 255  # models.SEARCH_LEN
# the list's order and every column a search filters on (models.SEARCH_INDEX): a covering
# index, so SQLite reads a row (with its large facts) only for the rows a page shows
SEARCH_INDEX = ("first_seen_at", "id", "last_seen_at", "vendor", "product", "serial", "image_id")
BATCH = 500


def _text(system: Any, key: str) -> str | None:
    """What models.search_text keeps (a migration keeps its own copy: models change)."""
    value = system.get(key) if isinstance(system, dict) else None
    if not isinstance(value, str) or not value:
        return None
    return "".join(
        "\ufffd" if "\ud800" <= c <= "\udfff" or c == "\x00" else c for c in value[:MAX_LEN]
    )


def upgrade() -> None:
    with op.batch_alter_table("nodes") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.String(MAX_LEN), nullable=True))
    op.create_index("ix_nodes_search", "nodes", list(SEARCH_INDEX))
    nodes = sa.table("nodes", sa.column("id"), sa.column("facts", sa.JSON()),
                     *(sa.column(name) for name in COLUMNS))  # fmt: skip
    conn = op.get_bind()
    last: str | None = None
    while True:  # BATCH nodes' facts in memory at a time, paged by id (keyset, not OFFSET)
        page = sa.select(nodes.c.id, nodes.c.facts).order_by(nodes.c.id).limit(BATCH)
        rows = conn.execute(page if last is None else page.where(nodes.c.id > last)).all()
        for node_id, facts in rows:
            system = facts.get("system") if isinstance(facts, dict) else None
            values = {name: _text(system, name) for name in COLUMNS}
            if any(values.values()):
                conn.execute(nodes.update().where(nodes.c.id == node_id).values(**values))
        if len(rows) < BATCH:
            break
        last = rows[-1][0]


def downgrade() -> None:
    op.drop_index("ix_nodes_search", "nodes")
    with op.batch_alter_table("nodes") as batch:
        for name in COLUMNS:
            batch.drop_column(name)
