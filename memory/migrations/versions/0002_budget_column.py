"""The run budget as a column: ``experiment.budget_s`` (indexed), so that the champion's
budget filter is SQL; backfilled from ``resources.budget_s`` where that is a finite number
(the rule of ``memory.models.recorded_budget``).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FLOAT_MAX = "1.7976931348623157e308"  # larger JSON numbers are no float: not backfilled

_BACKFILL = {
    "sqlite": f"""
        UPDATE experiment
        SET budget_s = CAST(json_extract(resources, '$.budget_s') AS REAL)
        WHERE budget_s IS NULL
          AND json_type(resources, '$.budget_s') IN ('integer', 'real')
          AND abs(json_extract(resources, '$.budget_s')) <= {_FLOAT_MAX}
    """,
    "postgresql": f"""
        UPDATE experiment
        SET budget_s = CAST(resources ->> 'budget_s' AS double precision)
        WHERE budget_s IS NULL
          AND json_typeof(resources -> 'budget_s') = 'number'
          AND abs(CAST(resources ->> 'budget_s' AS numeric)) <= {_FLOAT_MAX}
    """,
}


def upgrade() -> None:
    op.add_column("experiment", sa.Column("budget_s", sa.Float(), nullable=True))
    op.create_index("ix_experiment_budget_s", "experiment", ["budget_s"], unique=False)
    dialect = op.get_bind().dialect.name
    if dialect not in _BACKFILL:
        raise NotImplementedError(f"migration 0002: no backfill for the {dialect} dialect")
    op.execute(sa.text(_BACKFILL[dialect]))


def downgrade() -> None:
    op.drop_index("ix_experiment_budget_s", table_name="experiment")
    with op.batch_alter_table("experiment") as batch:
        batch.drop_column("budget_s")
