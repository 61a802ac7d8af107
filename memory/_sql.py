"""SQL plumbing shared by the SQL-backed store: engines, the claim-lock table, UTC fixes.

SQLite (embedded) runs in WAL mode with a busy timeout; the store also serialises its own
writes with a lock, so threads of one process never see "database is locked". PostgreSQL
uses psycopg 3 (``postgresql+psycopg://``); ``postgresql://`` and ``postgres://`` URLs are
rewritten to it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Engine, PrimaryKeyConstraint, create_engine, event
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.exc import OperationalError
from sqlmodel import DateTime, Field, SQLModel

from memory.errors import BackendUnavailable, InvalidInput
from memory.models import (
    Experiment,
    ExperimentBase,
    ExperimentPublic,
    Finding,
    FindingBase,
    FindingPublic,
)

log = logging.getLogger(__name__)


class ClaimLock(SQLModel, table=True):
    """One row per (task, fingerprint) ever claimed: who holds it and until when.

    Taking a claim is a single conditional upsert on this row (insert, or take over a row
    whose holder expired or released), so two processes can never both win.
    """

    __tablename__ = "claimlock"
    __table_args__ = (PrimaryKeyConstraint("task", "fingerprint"),)

    task: str = Field(max_length=200)
    fingerprint: str = Field(max_length=128)
    claim_id: str = Field(max_length=64)
    expires_at: datetime = Field(sa_type=DateTime(timezone=True))
    released: bool = False


def normalise_url(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30.0}, pool_size=8
        )

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

    else:
        engine = create_engine(url, pool_pre_ping=True, pool_size=8, max_overflow=8)
    return engine


def create_schema(engine: Engine) -> None:
    """Create missing tables (idempotent; safe when several processes start at once)."""
    try:
        SQLModel.metadata.create_all(engine)
    except OperationalError as exc:
        raise BackendUnavailable(f"sql: cannot open {engine.url!r}: {exc}") from exc
    except Exception as exc:  # another process created a table in between
        names = set(sa_inspect(engine).get_table_names())
        if not {"experiment", "claim", "finding", "claimlock"} <= names:
            raise BackendUnavailable(f"sql: cannot create schema: {exc}") from exc


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC: naive values (SQLite gives them back) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


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
    return finding.model_dump(include=set(FindingBase.model_fields))
