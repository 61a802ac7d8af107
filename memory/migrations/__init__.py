"""Schema migrations of the SQL memory (Alembic), applied when a store opens.

The tables are defined once, by the SQLModel classes in ``memory/models.py``; the revisions
in ``versions/`` are the frozen history of that schema:

- ``0001``: the schema of release 0.1.0 (commit 2ce97fd), tables and indexes as they were;
- ``0002``: the ``experiment.budget_s`` column (indexed), backfilled from
  ``resources.budget_s``;
- ``0003``: what a verdict was judged against (``experiment.seed``, ``reason``,
  ``base_metric`` ... ``threshold``), the ``confirmation`` role, and ``claim.hardware`` /
  ``claim.budget_s``; older rows read back NULL / ``''``;
- ``0004``: the ``near_duplicate`` status and ``experiment.proposer`` / ``matched_id``
  (``''`` in older rows);
- ``0005``: ``finding.evidence`` (an exported insight's evidence; ``{}`` in older rows);
- ``0006``: the ``remeasure`` role (older re-measures stay ``confirmation``);
- ``0007``: the ``short`` role and ``experiment.short_id`` (runs at a swarm's shorter
  budget, and the full run each one was promoted to).

:func:`upgrade` runs on every open (``memory._sql.create_schema``):

- a database without labswarm tables is upgraded to the head revision;
- a 0.1.0 memory (its tables, no ``alembic_version``) is stamped ``0001``, then upgraded;
- a memory at the head is left alone (a no-op);
- a memory at a revision this code does not know (written by a newer labswarm) is refused
  with ``BackendUnavailable`` naming the revision.

The whole check-and-upgrade is one transaction holding a lock (PostgreSQL: a transaction
advisory lock; SQLite: ``BEGIN IMMEDIATE``), so two processes opening the same new memory
at once migrate it exactly once. A new revision: ``alembic -c <ini with script_location =
memory/migrations> revision -m "..."``, then check it with ``tests/memory/test_migrations.py``
(the head must equal the models).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Any

# Alembic announces every plugin (on import) and step at INFO, which a CLI at INFO would
# print each time a memory opens; what this module does is logged here in its own words.
logging.getLogger("alembic").setLevel(logging.WARNING)

from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from alembic.runtime.migration import MigrationContext  # noqa: E402
from alembic.script import ScriptDirectory  # noqa: E402
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

from memory.errors import BackendUnavailable  # noqa: E402

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent
BASELINE = "0001"  # the schema of release 0.1.0
# The tables of release 0.1.0: a memory holding all of them and no alembic_version is
# stamped BASELINE. (The names are frozen here; the models may grow more tables later.)
BASELINE_TABLES = frozenset({"experiment", "claim", "claimlock", "finding", "swarm", "agent"})
_PG_LOCK_KEY = 0x6C6162_73776D  # pg_advisory_xact_lock key for schema changes ("labswm")
VERSION_TABLE = "alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for these migrations (no ini file); ``env.py`` runs them on
    ``connection``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    """The revisions (read once per process)."""
    return ScriptDirectory.from_config(alembic_config())


def head() -> str:
    """The newest revision this code knows."""
    rev = _script().get_current_head()
    if rev is None:
        raise RuntimeError(f"{MIGRATIONS_DIR / 'versions'} holds no revision")
    return rev


def current(connection: Connection) -> str | None:
    """The revision a database is at (``None``: no ``alembic_version`` table or row)."""
    if not inspect(connection).has_table(VERSION_TABLE):
        return None
    row = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    return None if row is None else str(row[0])


def _migration_engine(engine: Engine) -> Engine:
    """A one-off engine for the upgrade. On SQLite, pysqlite never begins a transaction
    for DDL by itself: switch its own handling off and begin with ``BEGIN IMMEDIATE``, which
    takes the write lock first (a second process waits on the busy timeout)."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "sqlite":
        return create_engine(url, poolclass=NullPool)
    eng = create_engine(url, poolclass=NullPool, connect_args={"timeout": 30.0})

    @event.listens_for(eng, "connect")
    def _no_driver_transactions(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(eng, "begin")
    def _begin_immediate(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return eng


def upgrade(engine: Engine, where: str = "") -> str:
    """Bring the database of ``engine`` to the head revision (see the module docstring);
    returns the revision it was at before (``"none"`` for a new database)."""
    where = where or engine.url.render_as_string(hide_password=True)
    script = _script()
    known = {rev.revision for rev in script.walk_revisions()}
    target = head()
    with engine.connect() as conn:  # the usual case, without taking any lock: up to date
        if current(conn) == target:
            return target
    eng = _migration_engine(engine)
    try:
        with eng.connect() as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            found = current(conn)
            if found is not None and found not in known:
                raise BackendUnavailable(
                    f"sql ({where}): this memory's schema is at revision {found!r}, which this "
                    f"labswarm does not know (it knows up to {target!r}); it was written by a "
                    "newer labswarm: upgrade labswarm to open it (nothing was changed)"
                )
            before = found or "none"
            if found is None:
                ours = BASELINE_TABLES & set(inspect(conn).get_table_names())
                if ours == BASELINE_TABLES:
                    log.info("%s: a memory of release 0.1.0; stamping %s", where, BASELINE)
                    MigrationContext.configure(conn).stamp(script, BASELINE)
                    before = BASELINE
                elif ours:
                    raise BackendUnavailable(
                        f"sql ({where}): found labswarm tables {sorted(ours)} but not "
                        f"{sorted(BASELINE_TABLES - ours)} and no alembic_version: not a "
                        "memory this labswarm can upgrade (nothing was changed)"
                    )
            if before != target:
                if before == "none":
                    log.info("%s: a new memory; creating its schema at %s", where, target)
                else:
                    log.info("%s: upgrading the memory's schema %s -> %s", where, before, target)
                command.upgrade(alembic_config(conn), "head")
            return before
    finally:
        eng.dispose()
