"""Entities of the shared memory (SQLModel families: XBase -> XCreate / X table / XPublic).

SQL is the truth. All datetimes are timezone-aware UTC. Ids are strings: callers may
supply one (packs and HTTP retries stay idempotent), otherwise the store makes a
uuid4 hex.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ValidationInfo, field_validator, model_validator
from pydantic import Field as PField
from sqlalchemy import JSON, DateTime, PrimaryKeyConstraint, Text
from sqlmodel import Field, SQLModel

from memory.errors import InvalidInput


def utcnow() -> datetime:
    """Now, timezone-aware UTC (the one clock of the memory)."""
    return datetime.now(UTC)


def utc(value: datetime | None) -> datetime | None:
    """Aware UTC: naive values (SQLite gives them back) are taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------------------
# Input limits: what every record and query must satisfy at the edge
# ---------------------------------------------------------------------------
# The *Create models and TraceQuery check every field with ``edge_problem`` (one rule for
# the API, the HTTP store and packs); a violation is a pydantic ValidationError naming the
# field, which the store turns into InvalidInput and the server into a 422. Public models
# do not re-check, so rows stored by older versions stay readable.

MAX_INT32 = 2**31 - 1  # INTEGER columns on PostgreSQL
# The most records one read returns: a page of traces or findings, a search (the API's
# ``limit``, ``labswarm search -k``); more is read page by page.
MAX_PAGE = 1000
MAX_JSON_DEPTH = 32  # nesting levels of resources / knobs / config
MAX_JSON_BYTES = 256 * 1024  # serialised UTF-8 size of one JSON field
MAX_TTL_SECONDS = 366 * 24 * 3600.0  # a claim longer than this is a mistake
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)  # datetimes before this are refused
LATEST = datetime(2101, 1, 1, tzinfo=UTC)  # ... and from this on (survives astimezone)
_INT64 = 2**63  # integers inside JSON fields must fit 64 bits

FindingOutcome = Literal["keep", "discard", "crash", "note"]


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text (None if it can): a NUL byte (PostgreSQL
    refuses it) or a lone surrogate (not encodable as UTF-8)."""
    if "\x00" in value:
        return "contains a NUL byte (\\x00)"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (not valid Unicode)"
    return None


def time_problem(value: datetime) -> str | None:
    """Why ``value`` is out of range (None if it is fine); naive values are taken as UTC."""
    try:
        aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        return f"is out of range (must lie in {EARLIEST.year}..{LATEST.year - 1} UTC)"
    if not EARLIEST <= aware < LATEST:
        return f"must lie in {EARLIEST.year}..{LATEST.year - 1} (UTC), got {value.isoformat()}"
    return None


def _json_problem(value: Any, path: str, depth: int) -> str | None:
    """Why ``value`` is not a storable JSON value (finite numbers, 64-bit integers, clean
    text, at most MAX_JSON_DEPTH levels), naming the path inside the field."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        problem = text_problem(value)
        return f"{path}: {problem}" if problem else None
    if isinstance(value, int):
        return None if -_INT64 <= value < _INT64 else f"{path}: integer out of 64-bit range"
    if isinstance(value, float):
        return None if math.isfinite(value) else f"{path}: must be a finite number, got {value}"
    if isinstance(value, dict | list | tuple):
        if depth >= MAX_JSON_DEPTH:
            return f"{path}: nested deeper than {MAX_JSON_DEPTH} levels"
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(value, dict):
                if not isinstance(key, str):
                    return f"{path}: keys must be strings, got {type(key).__name__}"
                problem = text_problem(key)
                if problem:
                    return f"{path}: key {key[:40]!r} {problem}"
            problem = _json_problem(item, f"{path}.{key}", depth + 1)
            if problem:
                return problem
        return None
    return f"{path}: not a JSON value ({type(value).__name__})"


def json_problem(value: Any, name: str = "value") -> str | None:
    """Why ``value`` cannot be stored in a JSON column (None if it can), including the
    MAX_JSON_BYTES limit on its serialised size."""
    problem = _json_problem(value, name, 0)
    if problem is None and isinstance(value, dict | list | tuple) and value:
        size = len(json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8"))
        if size > MAX_JSON_BYTES:
            return f"{name}: {size} bytes of JSON, more than {MAX_JSON_BYTES}"
    return problem


def edge_problem(value: Any, name: str = "value") -> str | None:
    """Why one field value may not enter the memory (None if it may)."""
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, datetime):
        return time_problem(value)
    if isinstance(value, float):
        return None if math.isfinite(value) else f"must be a finite number, got {value}"
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return None if -_INT64 <= value < _INT64 else "integer out of 64-bit range"
    return json_problem(value, name)


def _edge_check(cls: type, value: Any, info: ValidationInfo) -> Any:
    problem = edge_problem(value, info.field_name or "value")
    if problem:
        raise ValueError(problem)
    return value


def edge_checked() -> Any:
    """A ``field_validator("*")`` applying ``edge_problem`` to every field of a model."""
    return field_validator("*", mode="after")(_edge_check)


def check_args(what: str, **values: str | None) -> None:
    """Refuse plain query arguments (search text, filters) that cannot reach SQL: raises
    InvalidInput naming ``what.name``."""
    for name, value in values.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise InvalidInput(f"{what}.{name}: must be a string")
        problem = text_problem(value)
        if problem:
            raise InvalidInput(f"{what}.{name}: {problem}")


def storable(value: Any) -> Any:
    """A copy of a JSON-like value that the edge accepts, for writers that record what a
    program printed: non-finite floats become their text ("nan", "inf"), NUL bytes and
    lone surrogates are replaced, unknown types become ``str``. Depth and size are not
    changed (a writer should not build such values)."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {storable_text(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return storable_text(str(value))


def storable_text(text: str) -> str:
    """``text`` without NUL bytes and with lone surrogates replaced by U+FFFD."""
    if text_problem(text) is None:
        return text
    text = text.replace("\x00", "")
    if text_problem(text) is None:
        return text
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


class Status(StrEnum):
    """Outcome of one experiment (see DESIGN.md, Words)."""

    keep = "keep"  # beat its base by more than the noise
    discard = "discard"  # ran, not better
    crash = "crash"  # non-zero exit, NaN, no metric
    timeout = "timeout"  # killed at the hard timeout
    invalid = "invalid"  # proposal could not be applied, or touched a protected file
    duplicate = "duplicate"  # that program already ran: refused before spending a device
    interrupted = "interrupted"  # the swarm stopped mid-run
    # a drafted proposal too near in meaning to a recorded run or a claim in flight,
    # refused before any device is spent (``reason`` names the matched trace or claim)
    near_duplicate = "near_duplicate"


# Statuses of traces that actually spent a device on a complete run of the program.
RAN_STATUSES: tuple[Status, ...] = (Status.keep, Status.discard, Status.crash, Status.timeout)
# Of those, the runs that ended without a measurement of the program: a crash or a timeout.
CRASHED_STATUSES: tuple[Status, ...] = (Status.crash, Status.timeout)


class Role(StrEnum):
    """Why a trace exists."""

    experiment = "experiment"  # a proposal by an agent
    # a replicate run of a program chosen before any run of it here: the swarm's root (no
    # parent), to measure noise, or a prior from elsewhere (parent: the root's replicate)
    baseline = "baseline"
    seed = "seed"  # imported from a pack (another swarm, a person's log)
    # a re-run, with another seed, of an experiment's program (parent_id: that experiment;
    # same fingerprint; status: the final verdict of the pair, or its own failure)
    confirmation = "confirmation"
    # a re-run, with another seed, of a newly kept program after its verdict (parent_id:
    # the kept experiment; same fingerprint): no verdict chose it, so it measures the
    # program without the winner's curse (migration 0006)
    remeasure = "remeasure"
    # a run of an experiment's program at the swarm's shorter budget before any full run
    # of it (multi-fidelity; parent_id: the base; status keep: promoted to the full budget,
    # discard: not promoted); the full run names it in ``short_id`` (migration 0007)
    short = "short"


# What makes a program "seen" (``Store.seen``, and ``AlreadyRan`` for a claim): a finished
# run -- keep, discard or crash; a timeout or an interrupted run may be tried again -- made
# as an experiment or a baseline (a confirmation re-runs a program on purpose).
SEEN_STATUSES: tuple[Status, ...] = (Status.keep, Status.discard, Status.crash)
SEEN_ROLES: tuple[Role, ...] = (Role.experiment, Role.baseline)
# A short run "saw" its program when it ended the program's way at the short budget: not
# promoted (discard) or failed (crash); a promoted one leaves the verdict to its full run.
SHORT_SEEN_STATUSES: tuple[Status, ...] = (Status.discard, Status.crash)
# Runs whose metric is a measurement of their program (``Store.program_stats``,
# ``Store.noise``): trusted keep/discard runs of any role but seed.
MEASURED_STATUSES: tuple[Status, ...] = (Status.keep, Status.discard)
MEASURED_ROLES: tuple[Role, ...] = (
    Role.experiment,
    Role.baseline,
    Role.confirmation,
    Role.remeasure,
)
# The runs an agent spends a device on for its ideas: each experiment and its re-runs (a
# candidate's confirmation, a kept program's re-measures) or its short run (multi-
# fidelity: the same program at a shorter budget first); every one counts toward
# ``--max-experiments`` and in every experiments figure.
RUN_ROLES: tuple[Role, ...] = (Role.experiment, Role.confirmation, Role.remeasure, Role.short)
# Runs that no verdict chose: baseline replicates and re-measures. An experiment's first
# run passed the screen and its confirmation passed the keep test -- both were selected for
# looking good -- so the champion's title is decided on these alone (``champion_of``).
UNSELECTED_ROLES: tuple[Role, ...] = (Role.baseline, Role.remeasure)
# Runs that are a decision each: a proposal's verdict (an experiment; a seeded trace is
# another swarm's). Their keeps are the kept changes (``kept_change``, ``Stats``' keep rate
# and ``kept_changes``); the keep of any other role is a measurement that ran.
DECISION_ROLES: tuple[Role, ...] = (Role.experiment, Role.seed)
# The champion is a program with at least this many trusted, unselected keep runs (one
# lucky run is not; nor are the two runs that made a program a keep).
MIN_CHAMPION_RUNS = 2
# Roles a pack may not declare (``memory.packs`` refuses them on import and writes them
# as "seed" on export), and why: each feeds a swarm's judging, so only runs this
# installation made itself may have them.
UNPACKED_ROLES: dict[str, str] = {
    Role.baseline.value: "baselines set a swarm's noise",
    Role.confirmation.value: "confirmations decide whether a run is kept",
    Role.remeasure.value: "re-measures decide which program is the champion",
    Role.short.value: "short runs decide which programs run at the full budget",
}


Direction = Literal["minimize", "maximize"]


def better(a: float, b: float | None, direction: Direction) -> bool:
    """True if metric ``a`` is strictly better than ``b`` in ``direction`` (anything beats
    ``None``, "no value yet"). The one direction rule; noise margins are the judge's."""
    if b is None:
        return True
    return a > b if direction == "maximize" else a < b


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
    # the run's time budget in seconds; filled from resources["budget_s"] when not given
    budget_s: float | None = Field(default=None, index=True)
    # -- what the verdict was judged against (migration 0003; None / "" in older rows) --
    seed: int | None = None  # LABSWARM_SEED the run got
    # the verdict's reason in words, for every status (``error`` stays the failure text)
    reason: str = Field(default="", sa_type=Text, sa_column_kwargs={"server_default": ""})
    base_metric: float | None = None  # mean metric of the base program (parent_id)
    base_n: int | None = None  # runs behind base_metric
    judged_metric: float | None = None  # mean metric of this program the verdict used
    judged_n: int | None = None  # runs behind judged_metric (run + confirmation)
    noise_sd: float | None = None  # noise standard deviation used
    noise_n: int | None = None  # runs behind noise_sd
    threshold: float | None = None  # margin judged_metric had to beat base_metric by
    # -- who proposed it and what it nearly duplicated (migration 0004; "" in older rows) --
    # the proposer's name ("builtin", "llm", "hybrid:llm"; "" for baselines and imports)
    proposer: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    # a ``near_duplicate`` refusal: the id of the trace (or claim) the draft was too near to
    matched_id: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    # a full run promoted from a short run (multi-fidelity, migration 0007): the id of that
    # short run, the same program at the swarm's shorter budget ("" for every other trace)
    short_id: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})


# Judged-against fields that count runs (or are a seed): integers in 0..MAX_INT32 on input.
COUNT_FIELDS = ("seed", "base_n", "judged_n", "noise_n")


def recorded_budget(resources: dict[str, Any]) -> float | None:
    """``resources["budget_s"]`` if it is a finite number (what migration 0002 backfills)."""
    value = resources.get("budget_s")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


class ExperimentCreate(ExperimentBase):
    id: str | None = Field(default=None, max_length=64)
    created_at: datetime | None = None

    _edge = edge_checked()

    @field_validator(*COUNT_FIELDS, mode="after")
    @classmethod
    def _count_in_range(cls, value: int | None) -> int | None:
        """A seed or a count of runs is an integer in 0..MAX_INT32 (an INTEGER column)."""
        if value is not None and not 0 <= value <= MAX_INT32:
            raise ValueError(f"must lie in 0..{MAX_INT32}, got {value}")
        return value

    @field_validator("noise_sd", mode="after")
    @classmethod
    def _sd_not_negative(cls, value: float | None) -> float | None:
        """A standard deviation is never negative."""
        if value is not None and value < 0:
            raise ValueError(f"must not be negative, got {value}")
        return value

    @model_validator(mode="after")
    def _budget_from_resources(self) -> ExperimentCreate:
        """Writers that only record ``resources["budget_s"]`` still fill the column; a
        column value that contradicts it is refused (one budget per run)."""
        recorded = recorded_budget(self.resources) if isinstance(self.resources, dict) else None
        if self.budget_s is None:
            self.budget_s = recorded
        elif recorded is not None and recorded != self.budget_s:
            raise ValueError(
                f"budget_s: {self.budget_s} differs from resources.budget_s {recorded}"
            )
        return self


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
    # where the run will happen (migration 0003; "" / None in older rows): a claim is
    # refused with AlreadyRan only by a run of the program on this hardware and budget
    hardware: str = Field(default="", max_length=100, sa_column_kwargs={"server_default": ""})
    budget_s: float | None = None


class ClaimCreate(ClaimBase):
    id: str | None = Field(default=None, max_length=64)
    # the claim stops counting after this
    ttl_seconds: float = Field(default=3600.0, gt=0, le=MAX_TTL_SECONDS)

    _edge = edge_checked()


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
    # what the finding rests on (migration 0005; {} in older rows): an insight exported by
    # ``memory.insights`` keeps the whole insight under "insight" (numbers, trace ids)
    evidence: dict[str, Any] = Field(
        default_factory=dict, sa_type=JSON, sa_column_kwargs={"server_default": "{}"}
    )


class FindingCreate(FindingBase):
    id: str | None = Field(default=None, max_length=64)
    outcome: FindingOutcome  # a closed set on input only (old rows stay readable)

    _edge = edge_checked()


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

    _edge = edge_checked()


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
    experiments: int = Field(default=0, ge=0, le=MAX_INT32)

    _edge = edge_checked()


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
    minimize), traces without a metric last. ``budget_s`` matches the column exactly (a
    trace with no recorded budget never matches). ``trusted=True`` keeps only traces this
    installation ran itself: ``role != seed`` and an empty ``source`` (``False``: no filter).
    """

    task: str | None = None
    swarm_id: str | None = None
    agent_id: str | None = None
    parent_id: str | None = None
    fingerprint: str | None = None
    status: list[Status] | None = None
    role: list[Role] | None = None
    hardware: str | None = None
    budget_s: float | None = None
    trusted: bool = False
    metric_min: float | None = None
    metric_max: float | None = None
    since: datetime | None = None
    until: datetime | None = None
    sort: TraceSort = "-created_at"
    limit: int = PField(default=50, ge=1, le=MAX_PAGE)
    offset: int = PField(default=0, ge=0, le=MAX_INT32)

    _edge = edge_checked()


class RunStats(BaseModel):
    """The runs of one program that measure it (``Store.program_stats``): their mean
    metric, how many, and their sample standard deviation (``None`` below two runs)."""

    mean: float | None
    n: int
    sd: float | None


class NoiseEstimate(BaseModel):
    """The run-to-run noise of a task on one hardware class and budget (``Store.noise``).

    Pooled within-program standard deviation over the trusted keep/discard runs, grouped
    by program (fingerprint), of the programs with at least two such runs:
    ``sd = sqrt(sum_g sum_i (x_gi - mean_g)^2 / (n - groups))``; ``n`` counts the runs in
    those groups, ``df = n - groups``. ``sd`` is ``None`` while ``df == 0`` (no program ran
    twice). ``identical``: ``df > 0`` and every group's runs gave exactly the same metric
    (a deterministic task: ``sd == 0``)."""

    sd: float | None
    n: int
    df: int
    groups: int
    identical: bool


def run_here(trace: ExperimentBase) -> bool:
    """True for a run this installation made itself: not a seed and not imported from a
    pack or another installation (``TraceQuery(trusted=True)`` is the same rule in SQL)."""
    return trace.role != Role.seed and not trace.source


def seen_query(
    task: str,
    fingerprint: str,
    *,
    hardware: str | None = None,
    budget: float | None = None,
    short: bool = False,
) -> TraceQuery:
    """The query of ``Store.seen`` (the oldest match first), the one definition of "this
    program already ran": status in SEEN_STATUSES, role in SEEN_ROLES, on ``hardware`` and
    with ``budget_s == budget`` when given (a run without a recorded budget never matches a
    budget). ``AlreadyRan`` for a claim applies the same query in SQL. ``short``: the same
    for a short run at ``budget`` (multi-fidelity): role short, status in
    SHORT_SEEN_STATUSES."""
    return TraceQuery(
        task=task,
        fingerprint=fingerprint,
        status=list(SHORT_SEEN_STATUSES if short else SEEN_STATUSES),
        role=[Role.short] if short else list(SEEN_ROLES),
        hardware=hardware,
        budget_s=budget,
        sort="created_at",
        limit=1,
    )


def run_stats(values: Sequence[float]) -> RunStats:
    """Mean, count and sample standard deviation (n - 1; ``None`` below two values)."""
    if not values:
        return RunStats(mean=None, n=0, sd=None)
    mean = math.fsum(values) / len(values)
    if len(values) < 2:
        return RunStats(mean=mean, n=len(values), sd=None)
    if all(v == values[0] for v in values):
        return RunStats(mean=values[0], n=len(values), sd=0.0)
    ss = math.fsum((v - mean) ** 2 for v in values)
    return RunStats(mean=mean, n=len(values), sd=math.sqrt(ss / (len(values) - 1)))


def pooled_noise(groups: Iterable[Sequence[float]]) -> NoiseEstimate:
    """The pooled within-program noise of ``groups`` (each one program's metrics); groups
    of fewer than two runs carry no information about noise and are left out. See
    ``NoiseEstimate`` for the formula."""
    repeated = [list(g) for g in groups if len(g) >= 2]
    n = sum(len(g) for g in repeated)
    df = n - len(repeated)
    if df <= 0:
        return NoiseEstimate(sd=None, n=n, df=df, groups=len(repeated), identical=False)
    identical = all(all(v == g[0] for v in g) for g in repeated)
    if identical:
        sd = 0.0
    else:
        ss = math.fsum((v - m) ** 2 for g in repeated for m in [math.fsum(g) / len(g)] for v in g)
        sd = math.sqrt(ss / df)
    return NoiseEstimate(sd=sd, n=n, df=df, groups=len(repeated), identical=identical)


KEEP_ALPHA = 0.05  # the keep rule's one-sided level: the most a no-effect change is kept


def margin(
    sd: float,
    df: int,
    runs: int,
    other_runs: int,
    *,
    known: bool = False,
    alpha: float = KEEP_ALPHA,
) -> float:
    """How much better the mean of ``runs`` runs of one program must be than the mean of
    ``other_runs`` runs of another to count as better beyond the noise: a one-sided test at
    level ``alpha``, ``q * sd * sqrt(1/runs + 1/other_runs)`` with ``q`` Student's t
    quantile with ``df`` degrees of freedom (the normal one when the sd is ``known`` -- a
    declared floor -- or ``df`` is 0). The one margin of the keep rule, of an agent's move
    onto the champion, and of the champion itself."""
    from statistics import NormalDist

    if known or df <= 0:
        q = NormalDist().inv_cdf(1 - alpha)
    else:
        from scipy.stats import t as student_t

        q = float(student_t.ppf(1 - alpha, df))
    return q * sd * math.sqrt(1 / max(runs, 1) + 1 / max(other_runs, 1))


def gain(metric: float, other: float, direction: Direction) -> float:
    """How much better ``metric`` is than ``other`` in ``direction`` (negative: worse)."""
    return other - metric if direction == "minimize" else metric - other


def beats(
    mean: float | None,
    runs: int,
    other_mean: float | None,
    other_runs: int,
    direction: Direction,
    sd: float | None,
    df: int,
    *,
    known: bool = False,
    alpha: float = KEEP_ALPHA,
) -> bool:
    """True if the mean of ``runs`` runs of one program beats the mean of ``other_runs``
    runs of another beyond the noise: its gain is more than ``margin(sd, df, runs,
    other_runs, known=known, alpha=alpha)``, or more than nothing without a noise estimate
    (``sd`` ``None`` or 0). No mean beats nothing; any mean beats none. The one rule of the
    champion (``champion_of``, at a level shared by its contenders), of an agent's move
    onto the champion and of a failure measured on an outgrown base
    (``agents.judge.clearly_better``)."""
    if mean is None:
        return False
    if other_mean is None:
        return True
    needed = margin(sd, df, runs, other_runs, known=known, alpha=alpha) if sd else 0.0
    return gain(mean, other_mean, direction) > needed


def champion_of(
    programs: Iterable[tuple[str, Sequence[float]]],
    direction: Direction,
    noise: NoiseEstimate | None,
) -> str | None:
    """The champion among ``programs`` (key, metrics of its trusted keep runs that no
    verdict chose: ``UNSELECTED_ROLES``), given in the order each first ran. Only programs
    with at least ``MIN_CHAMPION_RUNS`` such runs count. The first of them is the *start*
    (a swarm's root, measured by its baseline replicates); each later one is a
    *contender*, and it *qualifies* when its mean ``beats`` the start's at level
    ``KEEP_ALPHA / contenders`` (Bonferroni: whatever the number of contenders, the start
    is wrongly dethroned at most ``KEEP_ALPHA`` of the time; with noise; without a noise
    estimate, by anything). The champion is the qualifier with the best mean, or the start
    while none qualifies. A program better than the start only inside the noise never
    takes the title, and neither does one whose only good runs are those that made it a
    keep: the champion does not move on a lucky draw, nor on the best of many lucky draws,
    and the gain it claims over the start is always beyond the noise. Among qualifiers the
    best mean wins, however close: each is already known to be better than the start."""
    sd, df = (noise.sd, noise.df) if noise is not None else (None, 0)
    measured = [(k, v) for k, v in programs if len(v) >= MIN_CHAMPION_RUNS]
    if not measured:
        return None
    (champion, start), contenders = measured[0], measured[1:]
    start_mean = math.fsum(start) / len(start)
    alpha = KEEP_ALPHA / max(len(contenders), 1)
    best_mean = start_mean
    for key, values in contenders:
        mean = math.fsum(values) / len(values)
        if better(mean, best_mean, direction) and beats(
            mean, len(values), start_mean, len(start), direction, sd, df, alpha=alpha
        ):
            champion, best_mean = key, mean
    return champion


def leader_of(programs: Iterable[tuple[str, float | None]], direction: Direction) -> str | None:
    """The leading program among ``programs`` (key, mean over all its measured runs), given
    in the order each first ran: the best mean, however few its runs -- one lucky run can
    lead -- the first to run on a tie; ``None`` while none has a mean. What a swarm's
    finals ranked by mean would re-test first; the champion is what the runs no verdict
    chose have shown (``champion_of``). The rule of ``Store.leader`` and of the
    yardstick's leader curve."""
    best: str | None = None
    best_mean: float | None = None
    for key, mean in programs:
        if mean is not None and better(mean, best_mean, direction):
            best, best_mean = key, mean
    return best


class BestSoFar(NamedTuple):
    """One point of the running best: the best kept metric so far (``None`` before the
    first keep) and whether this trace set it."""

    best: float | None
    is_best: bool


def kept_change(trace: ExperimentBase) -> bool:
    """Whether ``trace`` is a change a verdict kept (a keep of ``DECISION_ROLES``)."""
    return trace.status == Status.keep and trace.role in DECISION_ROLES


def charted_keep(trace: ExperimentBase) -> bool:
    """Whether a progress chart draws ``trace`` as kept, the only runs that can set its
    running best: a kept change, or a replicate of a start (its first point). A
    confirmation, a re-measure (a finalist's too, won or lost) or a promoted short run is
    recorded keep when it ran, but measures a program already on the chart, or at another
    budget."""
    return kept_change(trace) or (trace.status == Status.keep and trace.role == Role.baseline)


def crowned_run(traces: Sequence[ExperimentBase], champion: str | None) -> int | None:
    """The index in ``traces`` of the run that shows memory's champion (``champion``: its
    program's fingerprint) as kept when none of its runs in ``traces`` is a charted keep:
    its last kept re-measure. Such a champion is a program the finals crowned after its
    search-time verdict discarded it (a suspect gain, or one inside the noise); drawn
    grey, the chart's running best and ``results.tsv`` stopped short of the swarm's
    result. ``None`` when the champion is drawn kept already, or has no such run. It is
    not counted among the kept changes (``kept_change``): no search-time verdict kept it."""
    if champion is None:
        return None
    last: int | None = None
    for i, t in enumerate(traces):
        if t.fingerprint != champion:
            continue
        if charted_keep(t):
            return None
        if t.role == Role.remeasure and t.status == Status.keep and t.metric is not None:
            last = i
    return last


def charted_keeps(traces: Sequence[ExperimentBase], champion: str | None = None) -> list[bool]:
    """Which of ``traces`` (in order) a progress chart draws as kept: each charted keep
    (:func:`charted_keep`) and the champion's crowning run (:func:`crowned_run`;
    ``champion``: memory's champion's fingerprint, when known)."""
    crowned = crowned_run(traces, champion)
    return [charted_keep(t) or i == crowned for i, t in enumerate(traces)]


def first_of_each_program(traces: Sequence[ExperimentBase], flags: Sequence[bool]) -> list[bool]:
    """Of the runs ``flags`` marks, each program's first (by fingerprint), in order: the
    points a progress chart labels, so the start's replicates, one program run three
    times, carry one label instead of three drawn over each other."""
    seen: set[str] = set()
    out: list[bool] = []
    for t, flag in zip(traces, flags, strict=True):
        first = flag and t.fingerprint not in seen
        if first:
            seen.add(t.fingerprint)
        out.append(first)
    return out


def chart_label(traces: Sequence[ExperimentBase], index: int) -> str:
    """The text a progress chart writes beside ``traces[index]``, a run it draws as kept:
    its hypothesis; for a re-measure, which is drawn kept only as a champion's crowning
    run (:func:`crowned_run`), "champion (finals): " and the hypothesis of its program's
    first run in ``traces`` -- the idea, not "final re-measure 2 of <id>"."""
    run = traces[index]
    if run.role != Role.remeasure:
        return run.hypothesis
    first = next(t for t in traces if t.fingerprint == run.fingerprint)
    return f"champion (finals): {first.hypothesis if first is not run else run.hypothesis}"


def running_best(
    traces: Sequence[ExperimentBase], direction: Direction, kept: Sequence[bool] | None = None
) -> list[BestSoFar]:
    """The running best of ``traces`` in the given order: only runs drawn as kept (``kept``,
    by default :func:`charted_keeps` without a champion) with a finite metric can set it
    (the progress chart's step line, on the dashboard and in exports)."""
    flags = charted_keeps(traces) if kept is None else kept
    out: list[BestSoFar] = []
    best: float | None = None
    for t, drawn in zip(traces, flags, strict=True):
        is_best = (
            drawn
            and t.metric is not None
            and math.isfinite(t.metric)
            and better(t.metric, best, direction)
        )
        if is_best:
            best = t.metric
        out.append(BestSoFar(best, is_best))
    return out


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
    keep_rate: float | None  # keeps / (keeps + discards), baselines and confirmations left out
    duplicates_refused: int
    # runs (experiments, confirmations, re-measures, short runs that ran, crashed or timed
    # out; no refused proposal) over their first..last created_at
    experiments_per_hour: float | None
    findings: int
    active_claims: int
    first_at: datetime | None = None
    last_at: datetime | None = None
    # the keeps of that rate: changes a verdict kept (experiments and seeded traces); the
    # other keep traces are measurements that ran (replicates, re-measures, confirmations)
    kept_changes: int = 0
    # traces per task name (of the swarm or task asked for), most recently active first
    # (ties by name): the names a ``--task`` or ``?task=`` filter takes
    tasks: dict[str, int] = PField(default_factory=dict)


class ImportResult(BaseModel):
    added_traces: int
    added_findings: int
    skipped: int  # already present (same id): importing twice adds nothing
