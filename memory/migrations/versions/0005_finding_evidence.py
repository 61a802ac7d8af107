"""What a finding rests on (issue 15, insights): ``finding.evidence``, a JSON object.

An insight exported into a pack is a finding whose ``evidence`` holds the whole insight
(its numbers and the ids of the traces behind it), so that importing the pack brings it
back intact. Older rows read back ``{}`` (the column's server default, so that a NOT NULL
column can be added to a table that holds rows); nothing is backfilled.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"migration 0005: the {dialect} dialect is not supported")
    op.add_column(
        "finding",
        sa.Column("evidence", sa.JSON(), nullable=False, server_default=sa.text("'{}'")),
    )


def downgrade() -> None:
    """Drops the column: the evidence of imported insights is lost (export them first; a
    pack written by this revision keeps it)."""
    with op.batch_alter_table("finding") as batch:
        batch.drop_column("evidence")
