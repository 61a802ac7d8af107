"""Findings, swarms, agents and stats of the SQL-backed store."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from memory._rows import finding_row, validated
from memory._sql import finding_content, to_public_finding, utc_fields
from memory.errors import Conflict, InvalidInput
from memory.models import (
    DECISION_ROLES,
    MAX_PAGE,
    RAN_STATUSES,
    RUN_ROLES,
    Agent,
    AgentCreate,
    AgentPublic,
    Claim,
    Experiment,
    Finding,
    FindingCreate,
    FindingPublic,
    Page,
    Stats,
    Status,
    Swarm,
    SwarmCreate,
    SwarmPublic,
    check_args,
    utc,
    utcnow,
)

RUN_ROLE_VALUES = frozenset(r.value for r in RUN_ROLES)
# a refused proposal (invalid, duplicate, near duplicate) never ran: not a run of the rate
RAN_STATUS_VALUES = frozenset(s.value for s in RAN_STATUSES)
DECISION_ROLE_VALUES = frozenset(r.value for r in DECISION_ROLES)


class RecordsMixin:
    """Findings, swarms, agents and stats for ``SqlStore``."""

    _session: Callable[[], Any]
    _writing: Callable[[], Any]
    _dedupe: Callable[..., tuple[list, int]]
    _fetch: Callable[..., dict[str, Any]]  # SqlStore._fetch(model, ids, *where)
    _indexer: Any
    _tasks: Any  # memory._tasks.TaskCap

    # -- findings ------------------------------------------------------------

    def add_findings(self, findings: Sequence[FindingCreate]) -> list[FindingPublic]:
        rows = [finding_row(f) for f in findings]
        fresh, _ = self._dedupe(rows, Finding, finding_content, "finding")
        self._tasks.admit(r.task for r in fresh)  # max_tasks (memory._tasks)
        if fresh:
            try:
                with self._writing() as session:
                    session.add_all(fresh)
                    session.commit()
            except IntegrityError as exc:
                raise Conflict(f"findings: another writer added the same ids: {exc.orig}") from exc
        self._indexer.submit("finding", fresh)
        ids = list(dict.fromkeys(r.id for r in rows))
        stored = self._fetch(Finding, ids)
        return [to_public_finding(stored[i]) for i in ids]

    def query_findings(
        self,
        *,
        task: str | None = None,
        hardware: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[FindingPublic]:
        check_args("findings", task=task, hardware=hardware)
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"findings: limit must be in 1..{MAX_PAGE} and offset >= 0")
        where: list[Any] = []
        if task is not None:  # findings of that task and those for any task ("")
            where.append(or_(col(Finding.task) == task, col(Finding.task) == ""))
        if hardware is not None:
            where.append(col(Finding.hardware) == hardware)
        with self._session() as session:
            total = session.exec(select(func.count()).select_from(Finding).where(*where)).one()
            rows = session.exec(
                select(Finding)
                .where(*where)
                .order_by(col(Finding.created_at).desc(), col(Finding.id))
                .offset(offset)
                .limit(limit)
            ).all()
        return Page(data=[to_public_finding(r) for r in rows], count=int(total))

    # -- swarms and agents ---------------------------------------------------

    def upsert_swarm(self, swarm: SwarmCreate) -> SwarmPublic:
        swarm = validated(SwarmCreate, swarm, "swarm", ("task",))
        row = self._upsert(Swarm, swarm.id, swarm.model_dump(exclude={"id"}))
        return SwarmPublic.model_validate(utc_fields(row))

    def list_swarms(self, task: str | None = None) -> list[SwarmPublic]:
        stmt = select(Swarm).order_by(col(Swarm.created_at).desc(), col(Swarm.id))
        if task is not None:
            stmt = stmt.where(Swarm.task == task)
        with self._session() as session:
            return [
                SwarmPublic.model_validate(utc_fields(r.model_dump())) for r in session.exec(stmt)
            ]

    def upsert_agent(self, agent: AgentCreate) -> AgentPublic:
        agent = validated(AgentCreate, agent, "agent", ("swarm_id", "name"))
        agent_id = agent.id or f"{agent.swarm_id}/{agent.name}"
        row = self._upsert(Agent, agent_id, agent.model_dump(exclude={"id"}))
        return AgentPublic.model_validate(utc_fields(row))

    def _upsert(self, table: Any, row_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
        """Insert a swarm/agent row, or update it in place (``updated_at`` = now)."""
        with self._writing() as session:
            row = session.get(table, row_id) if row_id else None
            if row is None:
                row = table(**data, **({"id": row_id} if row_id else {}))
            else:
                for key, value in data.items():
                    setattr(row, key, value)
                row.updated_at = utcnow()
            session.add(row)
            session.commit()
            return row.model_dump()

    def list_agents(self, swarm_id: str | None = None) -> list[AgentPublic]:
        stmt = select(Agent).order_by(col(Agent.swarm_id), col(Agent.name))
        if swarm_id is not None:
            stmt = stmt.where(Agent.swarm_id == swarm_id)
        with self._session() as session:
            return [
                AgentPublic.model_validate(utc_fields(r.model_dump())) for r in session.exec(stmt)
            ]

    # -- stats ---------------------------------------------------------------

    def stats(self, task: str | None = None, swarm_id: str | None = None) -> Stats:
        check_args("stats", task=task, swarm_id=swarm_id)
        e = Experiment
        created = col(e.created_at)
        where: list[Any] = []
        if task is not None:
            where.append(col(e.task) == task)
        if swarm_id is not None:
            where.append(col(e.swarm_id) == swarm_id)
        with self._session() as session:
            groups = session.execute(  # six columns: past sqlmodel.select's typed overloads
                sa_select(
                    col(e.task),
                    col(e.role),
                    col(e.status),
                    func.count(),
                    func.min(created),
                    func.max(created),
                )
                .where(*where)
                .group_by(col(e.task), col(e.role), col(e.status))
            ).all()
            f_task = col(Finding.task)
            f_where = [] if task is None else [or_(f_task == task, f_task == "")]
            findings = session.exec(select(func.count()).select_from(Finding).where(*f_where)).one()
            c_where = [col(Claim.released_at).is_(None), col(Claim.expires_at) > utcnow()]
            if task is not None:
                c_where.append(col(Claim.task) == task)
            if swarm_id is not None:
                c_where.append(col(Claim.swarm_id) == swarm_id)
            claims = session.exec(select(func.count()).select_from(Claim).where(*c_where)).one()
        by_status: dict[str, int] = {}
        exp_counts: dict[str, int] = {}
        # experiments and seeded traces: not baselines, confirmations nor re-measures (a
        # confirmed pair is one decision; a re-measure is none)
        judged_counts: dict[str, int] = {}
        first = last = exp_first = exp_last = None
        per_task: dict[str, int] = {}
        task_last: dict[str, float] = {}  # its newest trace's created_at, POSIX seconds
        for task_name, role, status, n, lo, hi in groups:
            key = str(getattr(status, "value", status))
            by_status[key] = by_status.get(key, 0) + int(n)
            per_task[task_name] = per_task.get(task_name, 0) + int(n)
            lo, hi = utc(lo), utc(hi)
            if lo is None or hi is None:  # created_at is NOT NULL: min/max always exist
                continue
            task_last[task_name] = max(hi.timestamp(), task_last.get(task_name, 0.0))
            first = lo if first is None or lo < first else first
            last = hi if last is None or hi > last else last
            role = str(getattr(role, "value", role))
            if role in DECISION_ROLE_VALUES:  # one decision each
                judged_counts[key] = judged_counts.get(key, 0) + int(n)
            if role in RUN_ROLE_VALUES and key in RAN_STATUS_VALUES:  # runs per hour
                exp_counts[key] = exp_counts.get(key, 0) + int(n)
                exp_first = lo if exp_first is None or lo < exp_first else exp_first
                exp_last = hi if exp_last is None or hi > exp_last else exp_last
        recent_first = sorted(per_task, key=lambda t: (-task_last.get(t, 0.0), t))
        keeps = judged_counts.get(Status.keep.value, 0)
        judged = keeps + judged_counts.get(Status.discard.value, 0)
        n_exp = sum(exp_counts.values())
        per_hour = None
        if n_exp >= 2 and exp_first is not None and exp_last is not None:
            hours = (exp_last - exp_first).total_seconds() / 3600.0
            per_hour = n_exp / hours if hours > 0 else None
        return Stats(
            total=sum(by_status.values()),
            by_status=by_status,
            keep_rate=keeps / judged if judged else None,
            kept_changes=keeps,
            duplicates_refused=by_status.get(Status.duplicate.value, 0),
            experiments_per_hour=per_hour,
            findings=int(findings),
            active_claims=int(claims),
            first_at=first,
            last_at=last,
            tasks={t: per_task[t] for t in recent_first},
        )
