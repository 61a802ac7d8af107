"""Claims of the SQL-backed store, atomic across processes.

A claim takes the ``claimlock`` row of its (task, fingerprint) with one statement::

    INSERT INTO claimlock (...) VALUES (...)
    ON CONFLICT (task, fingerprint) DO UPDATE SET claim_id = ..., expires_at = ...
        WHERE claimlock.released OR claimlock.expires_at <= now
    RETURNING claim_id

If another unexpired, unreleased claim holds the row the update does not happen, nothing
is returned and the caller gets ``AlreadyClaimed``. Both SQLite and PostgreSQL run this
atomically, so two processes can never hold the same fingerprint. A fingerprint with a
finished run on the claim's hardware and budget (``Store.seen``) raises ``AlreadyRan``
before any lock is taken, and again (the same rule in SQL) once the lock is held.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from memory._rows import validated
from memory._sql import utc_fields
from memory.errors import AlreadyClaimed, AlreadyRan, Conflict, NotFound
from memory.models import (
    Claim,
    ClaimCreate,
    ClaimLock,
    ClaimPublic,
    Experiment,
    TraceQuery,
    check_args,
    new_id,
    seen_query,
    utcnow,
)


def to_public_claim(row: Claim) -> ClaimPublic:
    return ClaimPublic.model_validate(utc_fields(row.model_dump()))


class ClaimsMixin:
    """``claim``/``release``/``active_claims`` for ``SqlStore``."""

    is_sqlite: bool
    _session: Callable[[], Any]
    _writing: Callable[[], Any]
    seen: Callable[..., Any]
    _trace_filters: Callable[[TraceQuery], list[Any]]

    def claim(self, claim: ClaimCreate) -> ClaimPublic:
        # ClaimCreate bounds ttl_seconds to (0, MAX_TTL_SECONDS] (memory.models)
        claim = validated(ClaimCreate, claim, "claim", ("task", "fingerprint"))
        claim_id = claim.id or new_id()
        if claim.id:
            with self._session() as session:
                existing = session.get(Claim, claim.id)
            if existing is not None:  # a retry of the same request
                if (existing.task, existing.fingerprint) != (claim.task, claim.fingerprint):
                    raise Conflict(f"claim {claim.id}: already exists for another fingerprint")
                return to_public_claim(existing)
        seen = seen_query(
            claim.task, claim.fingerprint, hardware=claim.hardware or None, budget=claim.budget_s
        )
        self._refuse_if_ran(
            self.seen(claim.task, claim.fingerprint, hardware=seen.hardware, budget=seen.budget_s),
            claim,
        )
        now = utcnow()
        expires = now + timedelta(seconds=claim.ttl_seconds)
        with self._writing() as session:
            if not self._take_lock(session, claim.task, claim.fingerprint, claim_id, expires, now):
                session.rollback()
                raise AlreadyClaimed(self._holder_message(session, claim.task, claim.fingerprint))
            # Look again now that the lock is ours: a holder that finished between the
            # first look and the lock wrote its trace before releasing its claim. The
            # same rule as ``seen`` (``memory.models.seen_query``), in SQL.
            ran = session.exec(
                select(Experiment)
                .where(*self._trace_filters(seen))
                .order_by(col(Experiment.created_at), col(Experiment.id))
                .limit(1)
            ).first()
            if ran is not None:
                session.rollback()
                self._refuse_if_ran(ran, claim)
            row = Claim(
                id=claim_id,
                task=claim.task,
                fingerprint=claim.fingerprint,
                swarm_id=claim.swarm_id,
                agent_id=claim.agent_id,
                parent_id=claim.parent_id,
                hypothesis=claim.hypothesis,
                knobs=claim.knobs,
                hardware=claim.hardware,
                budget_s=claim.budget_s,
                created_at=now,
                expires_at=expires,
            )
            session.add(row)
            session.commit()
        return to_public_claim(row)

    @staticmethod
    def _refuse_if_ran(ran: Any, claim: ClaimCreate) -> None:
        if ran is not None:
            status = getattr(ran.status, "value", ran.status)
            where = f" on hardware {claim.hardware!r}" if claim.hardware else ""
            within = f" with a budget of {claim.budget_s:g} s" if claim.budget_s is not None else ""
            raise AlreadyRan(
                f"task {claim.task!r} already ran fingerprint {claim.fingerprint}{where}"
                f"{within} as experiment {ran.id} (status {status})"
            )

    def _take_lock(
        self, session: Session, task: str, fingerprint: str, claim_id: str, expires: Any, now: Any
    ) -> bool:
        insert = sqlite.insert if self.is_sqlite else postgresql.insert
        stmt = insert(ClaimLock).values(
            task=task,
            fingerprint=fingerprint,
            claim_id=claim_id,
            expires_at=expires,
            released=False,
        )
        lock = ClaimLock.metadata.tables[ClaimLock.__tablename__].c
        upsert = stmt.on_conflict_do_update(
            index_elements=[lock.task, lock.fingerprint],
            set_={"claim_id": claim_id, "expires_at": expires, "released": False},
            where=(lock.released.is_(True)) | (lock.expires_at <= now),
        ).returning(lock.claim_id)
        won = session.execute(upsert).first()
        return won is not None and won[0] == claim_id

    def _holder_message(self, session: Session, task: str, fingerprint: str) -> str:
        holder = session.exec(
            select(Claim)
            .where(Claim.task == task, Claim.fingerprint == fingerprint)
            .where(col(Claim.released_at).is_(None))
            .order_by(col(Claim.created_at).desc())
        ).first()
        who = f" by {holder.agent_id or 'an agent'} (claim {holder.id})" if holder else ""
        until = f" until {to_public_claim(holder).expires_at.isoformat()}" if holder else ""
        return f"task {task!r} fingerprint {fingerprint} is already claimed{who}{until}"

    def release(self, claim_id: str) -> ClaimPublic:
        with self._writing() as session:
            row = session.get(Claim, claim_id)
            if row is None:
                raise NotFound(f"no claim with id {claim_id!r}")
            if row.released_at is None:
                row.released_at = utcnow()
                session.add(row)
                session.execute(
                    update(ClaimLock)
                    .where(
                        col(ClaimLock.task) == row.task,
                        col(ClaimLock.fingerprint) == row.fingerprint,
                        col(ClaimLock.claim_id) == claim_id,
                    )
                    .values(released=True)
                )
                session.commit()
            return to_public_claim(row)

    def active_claims(self, task: str | None = None) -> list[ClaimPublic]:
        check_args("claims", task=task)
        stmt = select(Claim).where(
            col(Claim.released_at).is_(None), col(Claim.expires_at) > utcnow()
        )
        if task is not None:
            stmt = stmt.where(Claim.task == task)
        stmt = stmt.order_by(col(Claim.created_at), col(Claim.id))
        with self._session() as session:
            return [to_public_claim(r) for r in session.exec(stmt)]
