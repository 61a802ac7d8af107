"""SQL plumbing shared by the SQL-backed store: engines, the schema on open, UTC fixes.

SQLite (embedded) runs in WAL mode with a busy timeout; the store also serialises its own
writes with a lock, so threads of one process never see "database is locked". Switching a
new file to WAL is retried (:func:`_wal`): SQLite refuses it at once, without waiting on
the busy timeout, while another process holds the write lock of a file still in rollback
mode -- several processes opening one new memory together. PostgreSQL
uses psycopg 3 (``postgresql+psycopg://``); ``postgresql://`` and ``postgres://`` URLs are
rewritten to it. Opening a database brings its schema to this code's revision with
Alembic (``memory.migrations``): new databases are created, older memories upgraded in place.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError

from memory import migrations
from memory.errors import BackendUnavailable, InvalidInput
from memory.models import (
    Experiment,
    ExperimentBase,
    ExperimentPublic,
    Finding,
    FindingBase,
    FindingPublic,
    utc,
)

log = logging.getLogger(__name__)

SQLITE_BUSY_S = 30.0  # how long a SQLite connection waits for another's lock


def normalise_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_S}, pool_size=8
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            _wal(cur)
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_S * 1000)}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    return engine


def _wal(cur: sqlite3.Cursor) -> None:
    """Switch the connection's file to WAL (a no-op once it is). SQLite answers "database
    is locked" at once, without its busy handler, while another connection holds the write
    lock of a file in rollback mode (waiting could deadlock), so the switch is tried again
    every 10 ms for as long as the busy timeout would have waited."""
    deadline = time.monotonic() + SQLITE_BUSY_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def create_schema(engine: Engine, where: str = "") -> None:
    """Bring the database to this code's schema (``memory.migrations.upgrade``: create,
    or upgrade an older memory in place; refuse one written by a newer labswarm). Safe when
    several processes open the same new database at once."""
    try:
        migrations.upgrade(engine, where)
    except OperationalError as exc:
        raise BackendUnavailable(f"sql: cannot open {where or engine.url!r}: {exc.orig}") from exc


def utc_fields(data: dict[str, Any]) -> dict[str, Any]:
    """Every datetime value of a dumped row made aware UTC."""
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in data.items()}


def to_public_trace(row: Experiment) -> ExperimentPublic:
    return ExperimentPublic.model_validate(utc_fields(row.model_dump(exclude={"indexed"})))


def to_public_finding(row: Finding) -> FindingPublic:
    return FindingPublic.model_validate(utc_fields(row.model_dump(exclude={"indexed"})))


def invalid(exc: ValidationError, what: str) -> InvalidInput:
    """A pydantic error as InvalidInput naming the field(s)."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or what
        parts.append(f"{loc}: {err['msg']}")
    return InvalidInput(f"{what}: " + "; ".join(parts))


def trace_content(trace: ExperimentBase) -> dict[str, Any]:
    """The comparable content of a trace (for idempotent writes)."""
    data = trace.model_dump(include=set(ExperimentBase.model_fields))
    data["status"] = str(data["status"])
    data["role"] = str(data["role"])
    return utc_fields(data)


def finding_content(finding: FindingBase) -> dict[str, Any]:
    """The comparable content of a finding (for idempotent writes); the name of the pack
    it came in is not part of it: the same finding in a second pack is already stored."""
    return finding.model_dump(include=set(FindingBase.model_fields) - {"pack"})
