"""Champions from runs no verdict chose (issue 13): the ``remeasure`` role.

A kept program's re-measures were recorded as ``confirmation`` runs until now, although,
unlike a confirmation, no verdict selected them; the champion rule counts only them and
baseline replicates, so they get their own role. The ``role`` enum gains ``remeasure``
(PostgreSQL: ``ALTER TYPE ... ADD VALUE``; SQLite: nothing to do, the column is a VARCHAR
as long as its longest label, ``confirmation``, and ``remeasure`` is shorter).

Nothing is backfilled: an older re-measure stays a ``confirmation`` (which run was which was
not recorded), so an older swarm's kept programs have no unselected runs and its root
stays its champion -- the honest reading of evidence that cannot tell.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_OLD_ROLES = ("experiment", "baseline", "seed", "confirmation")
_NEW_ROLE = "remeasure"


def _dialect() -> str:
    dialect = op.get_bind().dialect.name
    if dialect not in ("sqlite", "postgresql"):
        raise NotImplementedError(f"migration 0006: the {dialect} dialect is not supported")
    return dialect


def upgrade() -> None:
    if _dialect() == "postgresql":
        op.execute(sa.text(f"ALTER TYPE role ADD VALUE IF NOT EXISTS '{_NEW_ROLE}'"))


def downgrade() -> None:
    """Refused while any trace has role ``remeasure`` (revision 0005 cannot read one);
    otherwise the label is dropped."""
    dialect = _dialect()
    left = (
        op.get_bind()
        .execute(sa.text("SELECT count(*) FROM experiment WHERE role = :role"), {"role": _NEW_ROLE})
        .scalar_one()
    )
    if left:
        raise RuntimeError(
            f"migration 0006 downgrade: {left} trace(s) have role {_NEW_ROLE!r}, which revision "
            "0005 cannot read; export them (a pack writes them as 'seed') and delete them first"
        )
    if dialect == "postgresql":
        op.execute(sa.text("ALTER TYPE role RENAME TO role_0006"))
        roles = ", ".join(f"'{r}'" for r in _OLD_ROLES)
        op.execute(sa.text(f"CREATE TYPE role AS ENUM ({roles})"))
        op.execute(
            sa.text("ALTER TABLE experiment ALTER COLUMN role TYPE role USING role::text::role")
        )
        op.execute(sa.text("DROP TYPE role_0006"))
