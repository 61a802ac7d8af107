"""Runs at several budgets (issue 14, multi-fidelity): the ``short`` role and ``short_id``.

A swarm with a short budget runs each new program at that budget first and only the best
fraction of those short runs at its full budget. The short run is a trace of its own (role
``short``, its budget in ``budget_s``); the full run it was promoted to names it in the new
column ``experiment.short_id``, so the two rungs stay linked.

- the ``role`` enum gains ``short`` (PostgreSQL: ``ALTER TYPE ... ADD VALUE``; SQLite:
  nothing to do, the column is a VARCHAR as long as ``confirmation``);
- ``experiment.short_id``: ``''`` (its server default) in every older row -- none was
  promoted from a short run.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_OLD_ROLES = ("experiment", "baseline", "seed", "confirmation", "remeasure")
_NEW_ROLE = "short"
_COLUMN = "short_id"


def _dialect() -> str:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"migration 0007: the {dialect} dialect is not supported")
    return dialect


def upgrade() -> None:
    dialect = _dialect()
    op.add_column(
        "experiment",
        sa.Column(_COLUMN, sa.String(length=64), nullable=False, server_default=""),
    )
    if dialect == "postgresql":
        op.execute(sa.text(f"ALTER TYPE role ADD VALUE IF NOT EXISTS '{_NEW_ROLE}'"))


def downgrade() -> None:
    """Refused while any trace has role ``short`` (revision 0006 cannot read one);
    otherwise the label and the column are dropped."""
    dialect = _dialect()
    left = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM experiment WHERE role = :role"), {"role": _NEW_ROLE})
        .scalar_one()
    )
    if left:
        raise RuntimeError(
            f"migration 0007 downgrade: {left} trace(s) have role {_NEW_ROLE!r}, which revision "
            "0006 cannot read; export them (a pack writes them as 'seed') and delete them first"
        )
    if dialect == "postgresql":
        op.execute(sa.text("ALTER TYPE role RENAME TO role_0007"))
        roles = ", ".join(f"'{r}'" for r in _OLD_ROLES)
        op.execute(sa.text(f"CREATE TYPE role AS ENUM ({roles})"))
        op.execute(
            sa.text("ALTER TABLE experiment ALTER COLUMN role TYPE role USING role::text::role")
        )
        op.execute(sa.text("DROP TYPE role_0007"))
        op.drop_column("experiment", _COLUMN)
        return
    with op.batch_alter_table("experiment") as batch:
        batch.drop_column(_COLUMN)
