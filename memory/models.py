"""Entities of the shared memory (SQLModel families: XBase -> XCreate / X table / XPublic).

SQL is the truth. All datetimes are timezone-aware UTC. Ids are strings: callers may
supply one (packs and HTTP retries stay idempotent), otherwise the store makes a
uuid4 hex.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel
from pydantic import Field as PField
from sqlalchemy import JSON, DateTime, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


class Status(StrEnum):
    """Outcome of one experiment (see DESIGN.md, Words)."""

    keep = "keep"  # beat its base by more than the noise
    discard = "discard"  # ran, not better
    crash = "crash"  # non-zero exit, NaN, no metric
    timeout = "timeout"  # killed at the hard timeout
    invalid = "invalid"  # proposal could not be applied, or touched a protected file
    duplicate = "duplicate"  # that program already ran: refused before spending a device
    interrupted = "interrupted"  # the swarm stopped mid-run


# Statuses of traces that actually spent a device on a complete run of the program.
RAN_STATUSES: tuple[Status, ...] = (Status.keep, Status.discard, Status.crash, Status.timeout)


class Role(StrEnum):
    """Why a trace exists."""

    experiment = "experiment"  # a proposal by an agent
    baseline = "baseline"  # a replicate run of an unmodified base, to measure noise
    seed = "seed"  # imported from a pack (another swarm, a person's log)


Direction = Literal["minimize", "maximize"]


# ---------------------------------------------------------------------------
# Experiment (trace)
# ---------------------------------------------------------------------------


class ExperimentBase(SQLModel):
    task: str = Field(index=True, max_length=200)
    swarm_id: str | None = Field(default=None, index=True, max_length=64)
    agent_id: str | None = Field(default=None, index=True, max_length=128)
    parent_id: str | None = Field(default=None, index=True, max_length=64)
    role: Role = Field(default=Role.experiment, index=True)
    hypothesis: str = Field(default="", sa_type=Text)
    diff: str = Field(default="", sa_type=Text)
    # knob changes: {"MATRIX_LR": [0.04, 0.045], ...} (old, new); empty for free-form edits
    knobs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    fingerprint: str = Field(index=True, max_length=128)
    status: Status = Field(index=True)
    metric_name: str = Field(default="val_bpb", max_length=100)
    metric: float | None = Field(default=None, index=True)
    direction: Direction = Field(default="minimize", sa_type=Text)
    memory_gb: float | None = None
    # every `key: value` of the run's summary block, plus anything else measured
    resources: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    log_tail: str = Field(default="", sa_type=Text)
    error: str = Field(default="", sa_type=Text)  # why crash/timeout/invalid, in words
    device: str = Field(default="", max_length=100)  # e.g. "cuda:0", "cpu[0-1]"
    hardware: str = Field(default="", index=True, max_length=100)  # class, e.g. "1xH100"
    source: str = Field(default="", sa_type=Text)  # where an imported trace came from
    started_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    finished_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    duration_s: float | None = None


class ExperimentCreate(ExperimentBase):
    id: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = None


class Experiment(ExperimentBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    created_at: datetime = Field(
        default_factory=utcnow, index=True, sa_type=DateTime(timezone=True)
    )
    # False until the vector index holds this row; `reindex` fixes every False row.
    indexed: bool = Field(default=False, index=True)


class ExperimentPublic(ExperimentBase):
    id: str
    created_at: datetime


# ---------------------------------------------------------------------------
# Claim: a proposal running right now
# ---------------------------------------------------------------------------


class ClaimBase(SQLModel):
    task: str = Field(index=True, max_length=200)
    fingerprint: str = Field(index=True, max_length=128)
    swarm_id: str | None = Field(default=None, index=True, max_length=64)
    agent_id: str | None = Field(default=None, max_length=128)
    parent_id: str | None = Field(default=None, max_length=64)
    hypothesis: str = Field(default="", sa_type=Text)
    knobs: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class ClaimCreate(ClaimBase):
    id: str | None = Field(default=None, max_length=64)
    ttl_seconds: float = 3600.0  # the claim stops counting after this


class Claim(ClaimBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    expires_at: datetime = Field(index=True, sa_type=DateTime(timezone=True))
    released_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class ClaimPublic(ClaimBase):
    id: str
    created_at: datetime
    expires_at: datetime
    released_at: datetime | None = None


# ---------------------------------------------------------------------------
# Finding: prior knowledge that is not a run of this swarm
# ---------------------------------------------------------------------------


class FindingBase(SQLModel):
    task: str = Field(default="", index=True, max_length=200)  # "" = any task
    change: str = Field(sa_type=Text)  # what was changed, in words
    outcome: str = Field(max_length=32)  # keep | discard | crash | note
    metric_name: str = Field(default="val_bpb", max_length=100)
    before: float | None = None
    after: float | None = None
    hardware: str = Field(default="", index=True, max_length=100)
    source: str = Field(sa_type=Text)  # where it came from (a URL, a pack, a person)
    pack: str = Field(default="", max_length=200)  # pack name it was imported from


class FindingCreate(FindingBase):
    id: str | None = Field(default=None, max_length=64)


class Finding(FindingBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    indexed: bool = Field(default=False, index=True)


class FindingPublic(FindingBase):
    id: str
    created_at: datetime


# ---------------------------------------------------------------------------
# Swarms and agents
# ---------------------------------------------------------------------------


class SwarmBase(SQLModel):
    task: str = Field(index=True, max_length=200)
    name: str = Field(default="", max_length=200)
    status: str = Field(default="running", max_length=32)  # running | stopped | finished
    hardware: str = Field(default="", max_length=100)
    config: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class SwarmCreate(SwarmBase):
    id: str | None = Field(default=None, max_length=64)


class Swarm(SwarmBase, table=True):
    id: str = Field(default_factory=new_id, primary_key=True, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class SwarmPublic(SwarmBase):
    id: str
    created_at: datetime
    updated_at: datetime


class AgentBase(SQLModel):
    swarm_id: str = Field(index=True, max_length=64)
    name: str = Field(max_length=100)
    device: str = Field(default="", max_length=100)
    status: str = Field(default="idle", max_length=32)  # idle | proposing | running | stopped
    base_id: str | None = Field(default=None, max_length=64)
    hypothesis: str = Field(default="", sa_type=Text)  # what it is running now
    experiments: int = 0  # experiments finished by this agent


class AgentCreate(AgentBase):
    id: str | None = Field(default=None, max_length=128)  # default: f"{swarm_id}/{name}"


class Agent(AgentBase, table=True):
    id: str = Field(primary_key=True, max_length=128)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=DateTime(timezone=True))


class AgentPublic(AgentBase):
    id: str
    updated_at: datetime


# ---------------------------------------------------------------------------
# Query and result shapes (not tables)
# ---------------------------------------------------------------------------

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page of a list: ``count`` is the total number of matches, not ``len(data)``."""

    data: list[T]
    count: int


TraceSort = Literal["created_at", "-created_at", "metric", "-metric", "best"]


class TraceQuery(BaseModel):
    """Filters for ``Store.query_traces``. Every filter is applied in SQL.

    ``sort="best"`` orders by metric in each trace's own direction (lowest first for
    minimize), traces without a metric last.
    """

    task: str | None = None
    swarm_id: str | None = None
    agent_id: str | None = None
    parent_id: str | None = None
    fingerprint: str | None = None
    status: list[Status] | None = None
    role: list[Role] | None = None
    hardware: str | None = None
    metric_min: float | None = None
    metric_max: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: TraceSort = "-created_at"
    limit: int = PField(default=50, ge=1, le=1000)
    offset: int = PField(default=0, ge=0)


class SearchHit(BaseModel):
    """One semantic-search result. ``score`` is cosine similarity in [-1, 1], higher is nearer."""

    kind: Literal["trace", "finding"]
    id: str
    score: float
    text: str  # the document that was embedded
    experiment: ExperimentPublic | None = None
    finding: FindingPublic | None = None


class Lineage(BaseModel):
    experiment: ExperimentPublic
    ancestors: list[ExperimentPublic]  # root first, parent last
    descendants: list[ExperimentPublic]  # breadth-first


class Stats(BaseModel):
    total: int
    by_status: dict[str, int]
    keep_rate: float | None  # keeps / (keeps + discards), baselines left out
    duplicates_refused: int
    experiments_per_hour: float | None  # over first..last created_at, role=experiment
    findings: int
    active_claims: int
    first_at: datetime | None = None
    last_at: datetime | None = None


class ImportResult(BaseModel):
    added_traces: int
    added_findings: int
    skipped: int  # already present (same id): importing twice adds nothing
