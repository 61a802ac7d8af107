"""Alembic's environment for labswarm's memory: online only, on the connection that
``memory.migrations.upgrade`` hands over in ``config.attributes["connection"]``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import memory.models  # noqa: F401 - registers the tables on SQLModel.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "memory/migrations runs through memory.migrations.upgrade(engine) (a store opening "
        "its database), not through the alembic command line without a connection"
    )
context.configure(connection=connection, target_metadata=SQLModel.metadata)
with context.begin_transaction():
    context.run_migrations()
