"""Recall by the idea (issue 15): who proposed a trace, and what a refused draft nearly
duplicated.

- ``experiment``: ``proposer`` (the proposer's name: "builtin", "llm", "hybrid:llm") and
  ``matched_id`` (for a ``near_duplicate`` refusal, the trace or claim it was too near to);
- the ``status`` enum gains ``near_duplicate`` (PostgreSQL: ``ALTER TYPE ... ADD VALUE``;
  SQLite: the column's VARCHAR grows to the longest label, by a table copy).

Older rows stay honestly empty: both new columns are ``''`` (their server default, so that
NOT NULL columns can be added to tables that hold rows). Nothing is backfilled: which
proposer made an old trace was not recorded.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_OLD_STATUSES = ("keep", "discard", "crash", "timeout", "invalid", "duplicate", "interrupted")
_NEW_STATUS = "near_duplicate"

_COLUMNS = (("proposer", 100), ("matched_id", 64))


def _dialect() -> str:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"migration 0004: the {dialect} dialect is not supported")
    return dialect


def upgrade() -> None:
    dialect = _dialect()
    for name, length in _COLUMNS:
        op.add_column(
            "experiment",
            sa.Column(name, sa.String(length=length), nullable=False, server_default=""),
        )
    if dialect == "postgresql":
        # allowed inside the migration's transaction (PostgreSQL >= 12); the new label is
        # not used before the commit
        op.execute(sa.text(f"ALTER TYPE status ADD VALUE IF NOT EXISTS '{_NEW_STATUS}'"))
    else:  # the non-native enum is a VARCHAR as long as its longest label
        with op.batch_alter_table("experiment") as batch:
            batch.alter_column(
                "status",
                existing_type=sa.Enum(*_OLD_STATUSES, name="status"),
                type_=sa.Enum(*_OLD_STATUSES, _NEW_STATUS, name="status"),
                existing_nullable=False,
            )


def downgrade() -> None:
    """Refused while any trace has status ``near_duplicate`` (revision 0003 cannot read
    one); otherwise the new columns and the label are dropped."""
    dialect = _dialect()
    bind = op.get_bind()
    left = bind.execute(
        sa.text("SELECT count(*) FROM experiment WHERE status = :status"),
        {"status": _NEW_STATUS},
    ).scalar_one()
    if left:
        raise RuntimeError(
            f"migration 0004 downgrade: {left} trace(s) have status {_NEW_STATUS!r}, which "
            "revision 0003 cannot read; delete them first"
        )
    if dialect == "postgresql":
        op.execute(sa.text("ALTER TYPE status RENAME TO status_0004"))
        labels = ", ".join(f"'{s}'" for s in _OLD_STATUSES)
        op.execute(sa.text(f"CREATE TYPE status AS ENUM ({labels})"))
        op.execute(
            sa.text(
                "ALTER TABLE experiment ALTER COLUMN status TYPE status USING status::text::status"
            )
        )
        op.execute(sa.text("DROP TYPE status_0004"))
        for name, _ in _COLUMNS:
            op.drop_column("experiment", name)
        return
    with op.batch_alter_table("experiment") as batch:
        for name, _ in _COLUMNS:
            batch.drop_column(name)
        batch.alter_column(
            "status",
            existing_type=sa.Enum(*_OLD_STATUSES, _NEW_STATUS, name="status"),
            type_=sa.Enum(*_OLD_STATUSES, name="status"),
            existing_nullable=False,
        )
