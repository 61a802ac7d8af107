"""The schema of release 0.1.0 (commit 2ce97fd), frozen: every table and index as
``SQLModel.metadata.create_all`` made them then.

Revision ID: 0001
Revises:
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
_ROLE = sa.Enum("experiment", "baseline", "seed", name="role")
_STATUS = sa.Enum(
    "keep", "discard", "crash", "timeout", "invalid", "duplicate", "interrupted", name="status"
)


def _indexes(table: str, *columns: str) -> None:
    for column in columns:
        op.create_index(f"ix_{table}_{column}", table, [column], unique=False)


def upgrade() -> None:
    op.create_table(
        "agent",
        sa.Column("swarm_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("device", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("base_id", sa.String(length=64), nullable=True),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("experiments", sa.Integer(), nullable=False),
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("agent", "swarm_id")
    op.create_table(
        "claim",
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("swarm_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.String(length=128), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("knobs", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("released_at", _TZ, nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("claim", "expires_at", "fingerprint", "swarm_id", "task")
    op.create_table(
        "claimlock",
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("claim_id", sa.String(length=64), nullable=False),
        sa.Column("expires_at", _TZ, nullable=False),
        sa.Column("released", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("task", "fingerprint"),
    )
    op.create_table(
        "experiment",
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("swarm_id", sa.String(length=64), nullable=True),
        sa.Column("agent_id", sa.String(length=128), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("role", _ROLE, nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("knobs", sa.JSON(), nullable=False),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("status", _STATUS, nullable=False),
        sa.Column("metric_name", sa.String(length=100), nullable=False),
        sa.Column("metric", sa.Float(), nullable=True),
        sa.Column("direction", sa.Text(), nullable=False),
        sa.Column("memory_gb", sa.Float(), nullable=True),
        sa.Column("resources", sa.JSON(), nullable=False),
        sa.Column("log_tail", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("device", sa.String(length=100), nullable=False),
        sa.Column("hardware", sa.String(length=100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("started_at", _TZ, nullable=True),
        sa.Column("finished_at", _TZ, nullable=True),
        sa.Column("duration_s", sa.Float(), nullable=True),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("indexed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes(
        "experiment",
        "agent_id",
        "created_at",
        "fingerprint",
        "hardware",
        "indexed",
        "metric",
        "parent_id",
        "role",
        "status",
        "swarm_id",
        "task",
    )
    op.create_table(
        "finding",
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("change", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("metric_name", sa.String(length=100), nullable=False),
        sa.Column("before", sa.Float(), nullable=True),
        sa.Column("after", sa.Float(), nullable=True),
        sa.Column("hardware", sa.String(length=100), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("pack", sa.String(length=200), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("indexed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("finding", "hardware", "indexed", "task")
    op.create_table(
        "swarm",
        sa.Column("task", sa.String(length=200), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("hardware", sa.String(length=100), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TZ, nullable=False),
        sa.Column("updated_at", _TZ, nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    _indexes("swarm", "task")


def downgrade() -> None:
    for table in ("swarm", "finding", "experiment", "claimlock", "claim", "agent"):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        _STATUS.drop(op.get_bind(), checkfirst=True)
        _ROLE.drop(op.get_bind(), checkfirst=True)
