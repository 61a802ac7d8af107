"""Trusted judging (issue 13): what each verdict was judged against, the confirmation role,
and where a claimed run will happen.

- ``experiment``: ``seed``, ``reason``, ``base_metric``, ``base_n``, ``judged_metric``,
  ``judged_n``, ``noise_sd``, ``noise_n``, ``threshold``;
- ``claim``: ``hardware``, ``budget_s``;
- the ``role`` enum gains ``confirmation`` (PostgreSQL: ``ALTER TYPE ... ADD VALUE``;
  SQLite: the column's VARCHAR grows to the longest label, by a table copy).

Older rows stay honestly empty: every new column is NULL, except the texts ``reason`` and
``claim.hardware``, which are ``''`` (their server default, so that the NOT NULL columns can
be added to tables that hold rows). Nothing is backfilled: an old verdict's basis was not
recorded, and guessing it would make it look trusted.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_OLD_ROLES = ("experiment", "baseline", "seed")
_NEW_ROLE = "confirmation"

# (name, type, NOT NULL text with default '')
_EXPERIMENT_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any], bool], ...] = (
    ("seed", sa.Integer(), False),
    ("reason", sa.Text(), True),
    ("base_metric", sa.Float(), False),
    ("base_n", sa.Integer(), False),
    ("judged_metric", sa.Float(), False),
    ("judged_n", sa.Integer(), False),
    ("noise_sd", sa.Float(), False),
    ("noise_n", sa.Integer(), False),
    ("threshold", sa.Float(), False),
)
_CLAIM_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any], bool], ...] = (
    ("hardware", sa.String(length=100), True),
    ("budget_s", sa.Float(), False),
)


def _column(name: str, type_: sa.types.TypeEngine[Any], text: bool) -> sa.Column[Any]:
    if text:
        return sa.Column(name, type_, nullable=False, server_default="")
    return sa.Column(name, type_, nullable=True)


def _dialect() -> str:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"migration 0003: the {dialect} dialect is not supported")
    return dialect


def upgrade() -> None:
    dialect = _dialect()
    for name, type_, text in _EXPERIMENT_COLUMNS:
        op.add_column("experiment", _column(name, type_, text))
    for name, type_, text in _CLAIM_COLUMNS:
        op.add_column("claim", _column(name, type_, text))
    if dialect == "postgresql":
        # allowed inside the migration's transaction (PostgreSQL >= 12); the new label is
        # not used before the commit
        op.execute(sa.text(f"ALTER TYPE role ADD VALUE IF NOT EXISTS '{_NEW_ROLE}'"))
    else:  # the non-native enum is a VARCHAR as long as its longest label
        with op.batch_alter_table("experiment") as batch:
            batch.alter_column(
                "role",
                existing_type=sa.Enum(*_OLD_ROLES, name="role"),
                type_=sa.Enum(*_OLD_ROLES, _NEW_ROLE, name="role"),
                existing_nullable=False,
            )


def downgrade() -> None:
    """Refused while any trace has role ``confirmation`` (revision 0002 cannot read one);
    otherwise the new columns and the label are dropped."""
    dialect = _dialect()
    bind = op.get_bind()
    left = bind.execute(
        sa.text("SELECT count(*) FROM experiment WHERE role = :role"), {"role": _NEW_ROLE}
    ).scalar_one()
    if left:
        raise RuntimeError(
            f"migration 0003 downgrade: {left} trace(s) have role {_NEW_ROLE!r}, which revision "
            "0002 cannot read; export them (a pack writes them as 'seed') and delete them first"
        )
    if dialect == "postgresql":
        op.execute(sa.text("ALTER TYPE role RENAME TO role_0003"))
        roles = ", ".join(f"'{r}'" for r in _OLD_ROLES)
        op.execute(sa.text(f"CREATE TYPE role AS ENUM ({roles})"))
        op.execute(
            sa.text("ALTER TABLE experiment ALTER COLUMN role TYPE role USING role::text::role")
        )
        op.execute(sa.text("DROP TYPE role_0003"))
        for name, _, _ in _EXPERIMENT_COLUMNS:
            op.drop_column("experiment", name)
        for name, _, _ in _CLAIM_COLUMNS:
            op.drop_column("claim", name)
        return
    with op.batch_alter_table("experiment") as batch:
        for name, _, _ in _EXPERIMENT_COLUMNS:
            batch.drop_column(name)
        batch.alter_column(
            "role",
            existing_type=sa.Enum(*_OLD_ROLES, _NEW_ROLE, name="role"),
            type_=sa.Enum(*_OLD_ROLES, name="role"),
            existing_nullable=False,
        )
    with op.batch_alter_table("claim") as batch:
        for name, _, _ in _CLAIM_COLUMNS:
            batch.drop_column(name)
