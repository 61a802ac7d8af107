"""The one store interface every memory backend implements.

Contract (checked by ``tests/memory/test_contract.py`` against every backend):

- **Thread safety**: one store object may be shared by many threads; every method is
  safe to call concurrently. Backends that several processes share (PostgreSQL +
  Chroma server, the HTTP store) are also safe across processes and machines.
- **Truth**: SQL rows are the truth. ``add_trace``/``import_records``/``add_findings``
  commit SQL first, then index; an indexing failure is logged, the row stays with
  ``indexed=False`` and ``reindex()`` repairs it. Nothing is ever lost to the index.
- **Returns**: public models (``ExperimentPublic``, ...), never live ORM rows; datetimes
  are timezone-aware UTC.
- **Raises**: only ``memory.errors`` classes: ``NotFound`` (unknown id), ``InvalidInput``
  (bad record or query; the message names the field), ``AlreadyClaimed`` /
  ``AlreadyRan`` (claims), ``Conflict`` (same id, other content),
  ``BackendUnavailable`` (a database/index/server cannot be reached).
- **Idempotency**: writing a record whose id already exists with the same content is a
  no-op that returns the stored record; with other content it raises ``Conflict``.
"""

from __future__ import annotations

import abc
import sys
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from memory._mirror import TraceMirror, created
from memory.models import (
    MAX_PAGE,
    MEASURED_ROLES,
    MEASURED_STATUSES,
    SEEN_ROLES,
    UNSELECTED_ROLES,
    AgentCreate,
    AgentPublic,
    ClaimCreate,
    ClaimPublic,
    ExperimentCreate,
    ExperimentPublic,
    FindingCreate,
    FindingPublic,
    ImportResult,
    Lineage,
    NoiseEstimate,
    Page,
    RunStats,
    SearchHit,
    Stats,
    Status,
    SwarmCreate,
    SwarmPublic,
    TraceQuery,
    champion_of,
    leader_of,
    pooled_noise,
    run_stats,
    seen_query,
)

if TYPE_CHECKING:
    from memory.insights import InsightReport

# A metric within +-_FLOAT_MAX is finite: these bounds exclude +-inf (and NaN, which
# PostgreSQL sorts above every number and SQLite stores as NULL) in SQL.
_FLOAT_MAX = sys.float_info.max
_EVIDENCE_KEYS = 64  # (task, hardware, budget, swarm) evidence caches kept per store


@dataclass(frozen=True)
class Evidence:
    """What the measured runs of a task on one hardware class and budget say
    (``Store.evidence``): each program's stats, the pooled noise, the champion, and the
    leader (``Store.leader``)."""

    programs: dict[str, RunStats]
    noise: NoiseEstimate
    champion: ExperimentPublic | None
    leader: ExperimentPublic | None = None

    def stats(self, fingerprint: str) -> RunStats:
        """``Store.program_stats`` of one program (no measured run: mean ``None``, n 0)."""
        return self.programs.get(fingerprint) or run_stats([])


@dataclass
class _EvidenceCache:
    """``Store.evidence`` of one (task, hardware, budget, swarm): its measured runs, kept
    up to date incrementally, the evidence computed from them, and the running sums
    (``built``) that computation added the runs to, oldest first."""

    runs: TraceMirror
    evidence: Evidence | None = None
    built: EvidenceBuilder | None = None


_EVIDENCE: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], _EvidenceCache]] = (
    weakref.WeakKeyDictionary()
)
_EVIDENCE_LOCK = threading.Lock()


def _light(t: ExperimentPublic) -> ExperimentPublic:
    """A measured run as the evidence cache holds it: without its log tail and diff."""
    return t.model_copy(update={"log_tail": "", "diff": ""})


def unselected(runs: Sequence[ExperimentPublic]) -> list[float]:
    """The metrics of the runs in ``runs`` that no verdict chose (``UNSELECTED_ROLES``)."""
    return [r.metric for r in runs if r.role in UNSELECTED_ROLES and r.metric is not None]


def _order(run: ExperimentPublic) -> tuple[datetime, str]:
    """Where a run stands among the measured runs, oldest first (``TraceMirror``'s order)."""
    return created(run), run.id


class EvidenceBuilder:
    """The ``Evidence`` of measured runs added oldest first, one at a time: runs grouped
    by program for the stats and the noise; the champion among the programs' keep runs
    that no verdict chose (``Store.champion``). Adding a run updates its program's stats
    only, so an agent's iteration does not regroup every run of a long swarm."""

    def __init__(self) -> None:
        self.programs: dict[str, list[float]] = {}
        self.kept: dict[str, list[ExperimentPublic]] = {}
        # each program's head: its first judged run (keep or discard) of a role memory
        # counts as a run of the program -- its experiment, or a baseline replicate; a
        # program with only confirmations or re-measures has none and is passed over. A
        # program discarded against its base can still become the champion when runs no
        # verdict chose (a swarm's finalists' re-measures) beat the start: the champion
        # rule judges those runs, not the verdict on its first one.
        self.heads: dict[str, ExperimentPublic] = {}
        self.stats: dict[str, RunStats] = {}
        self.ids: set[str] = set()
        self.last: tuple[datetime, str] | None = None
        self._changed: set[str] = set()

    def add(self, run: ExperimentPublic) -> None:
        self.ids.add(run.id)
        self.last = _order(run)
        if run.metric is None:
            return
        self.programs.setdefault(run.fingerprint, []).append(run.metric)
        self._changed.add(run.fingerprint)
        if run.status == Status.keep:
            self.kept.setdefault(run.fingerprint, []).append(run)
        if run.role in SEEN_ROLES:  # a keep or a discard (measured runs only); may be selected
            self.heads.setdefault(run.fingerprint, run)

    def evidence(self) -> Evidence:
        for fp in self._changed:
            self.stats[fp] = run_stats(self.programs[fp])
        self._changed.clear()
        noise = pooled_noise(self.programs.values())
        champion = leader = None
        if self.heads:
            direction = next(iter(self.heads.values())).direction
            key = champion_of(
                ((fp, unselected(runs)) for fp, runs in self.kept.items() if fp in self.heads),
                direction,
                noise,
            )
            champion = self.heads[key] if key is not None else None
            lead = leader_of(((fp, self.stats[fp].mean) for fp in self.heads), direction)
            leader = self.heads[lead] if lead is not None else None
        return Evidence(
            programs={fp: self.stats[fp] for fp in self.programs},
            noise=noise,
            champion=champion,
            leader=leader,
        )


def evidence_of(measured: Sequence[ExperimentPublic]) -> Evidence:
    """The ``Evidence`` of ``measured`` (the runs of ``_measured_query``, oldest first)
    (:class:`EvidenceBuilder`)."""
    return evidence_builder(measured).evidence()


def evidence_builder(measured: Sequence[ExperimentPublic]) -> EvidenceBuilder:
    """An :class:`EvidenceBuilder` with ``measured`` (oldest first) added."""
    builder = EvidenceBuilder()
    for run in measured:
        builder.add(run)
    return builder


def _built(cache: _EvidenceCache, added: Sequence[ExperimentPublic]) -> EvidenceBuilder:
    """``cache``'s runs added to its builder: only ``added`` (what the mirror's refresh
    just brought) when each is newer than every run added before (the usual case); else --
    a run committed late, or a builder that does not hold every other run of the mirror --
    all again in order, so the evidence is always that of the runs oldest first."""
    built = cache.built
    if built is not None and len(built.ids) + len(added) == len(cache.runs.traces):
        new = sorted(added, key=_order)
        if not new or built.last is None or _order(new[0]) > built.last:
            for run in new:
                built.add(run)
            return built
    cache.built = evidence_builder(cache.runs.oldest_first())
    return cache.built


def _measured_query(
    task: str,
    hardware: str | None,
    budget: float | None,
    swarm_id: str | None,
    *,
    fingerprint: str | None = None,
) -> TraceQuery:
    """The measured runs: trusted (``role != seed``, empty ``source``), of
    ``MEASURED_STATUSES`` and ``MEASURED_ROLES``, with a finite metric, on ``hardware``,
    with ``budget_s == budget``, from ``swarm_id`` and of ``fingerprint`` when given."""
    return TraceQuery(
        task=task,
        fingerprint=fingerprint,
        hardware=hardware,
        budget_s=budget,
        swarm_id=swarm_id,
        trusted=True,
        status=list(MEASURED_STATUSES),
        role=list(MEASURED_ROLES),
        metric_min=-_FLOAT_MAX,
        metric_max=_FLOAT_MAX,
    )


class Store(abc.ABC):
    """Abstract memory store. Backends: embedded (SQLite + local Chroma), team
    (PostgreSQL + Chroma server), HTTP (the labswarm server)."""

    # -- traces --------------------------------------------------------------

    @abc.abstractmethod
    def add_trace(self, trace: ExperimentCreate) -> ExperimentPublic:
        """Record one experiment (SQL, then the vector index)."""

    @abc.abstractmethod
    def get_trace(self, trace_id: str) -> ExperimentPublic:
        """One experiment; ``NotFound`` if unknown."""

    @abc.abstractmethod
    def query_traces(self, query: TraceQuery) -> Page[ExperimentPublic]:
        """Filter, sort and paginate experiments, all in SQL."""

    @abc.abstractmethod
    def lineage(self, trace_id: str) -> Lineage:
        """Ancestors (root first) and descendants of one experiment."""

    # -- semantic search -----------------------------------------------------

    @abc.abstractmethod
    def search(
        self,
        text: str,
        *,
        kinds: Sequence[str] = ("trace", "finding"),
        task: str | None = None,
        status: Sequence[Status] | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """Nearest traces/findings to ``text`` by embedding, best first.

        ``task``/``status`` filters are applied without Chroma ``where`` clauses on the
        hot path (SQL or per-task collections), so they stay cheap at 100k items.
        """

    # -- claims --------------------------------------------------------------

    @abc.abstractmethod
    def claim(self, claim: ClaimCreate) -> ClaimPublic:
        """Claim a fingerprint for a run about to start, atomically.

        Raises ``AlreadyClaimed`` if an active claim holds the same (task,
        fingerprint), and ``AlreadyRan`` iff ``seen(task, fingerprint,
        hardware=claim.hardware or None, budget=claim.budget_s)`` finds a finished run of
        it (a claim without hardware or budget is refused by a run on any). Expired or
        released claims do not count.
        """

    @abc.abstractmethod
    def release(self, claim_id: str) -> ClaimPublic:
        """Release a claim (idempotent); ``NotFound`` if unknown."""

    @abc.abstractmethod
    def active_claims(self, task: str | None = None) -> list[ClaimPublic]:
        """Claims neither released nor expired, oldest first."""

    # -- findings ------------------------------------------------------------

    @abc.abstractmethod
    def add_findings(self, findings: Sequence[FindingCreate]) -> list[FindingPublic]:
        """Add findings in one transaction (SQL, then the index)."""

    @abc.abstractmethod
    def query_findings(
        self,
        *,
        task: str | None = None,
        hardware: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> Page[FindingPublic]:
        """List findings, newest first."""

    # -- swarms and agents ---------------------------------------------------

    @abc.abstractmethod
    def upsert_swarm(self, swarm: SwarmCreate) -> SwarmPublic:
        """Create or update a swarm (by id)."""

    @abc.abstractmethod
    def list_swarms(self, task: str | None = None) -> list[SwarmPublic]:
        """Swarms, newest first."""

    @abc.abstractmethod
    def upsert_agent(self, agent: AgentCreate) -> AgentPublic:
        """Create or update an agent's live state (by id, default ``swarm_id/name``)."""

    @abc.abstractmethod
    def list_agents(self, swarm_id: str | None = None) -> list[AgentPublic]:
        """Agents, by swarm then name."""

    # -- bulk, stats, maintenance -------------------------------------------

    @abc.abstractmethod
    def import_records(
        self, traces: Sequence[ExperimentCreate], findings: Sequence[FindingCreate]
    ) -> ImportResult:
        """Import in one SQL transaction: all or nothing; ids already present are
        skipped (importing the same records twice adds nothing)."""

    @abc.abstractmethod
    def stats(self, task: str | None = None, swarm_id: str | None = None) -> Stats:
        """Counts by status, keep rate, duplicates refused, experiments/hour."""

    @abc.abstractmethod
    def reindex(self, full: bool = False) -> int:
        """Index every row with ``indexed=False`` (``full``: rebuild the whole index
        from SQL). Returns the number of rows indexed."""

    @abc.abstractmethod
    def index_count(self) -> int:
        """Items in the vector index (traces + findings), to compare with SQL."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and clients."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers written once on top of the abstract methods -------------------
    # (so every backend, the HTTP store included, answers them the same way)

    def every_trace(self, query: TraceQuery) -> list[ExperimentPublic]:
        """Every trace matching ``query`` (its sort, limit and offset ignored), oldest
        first, read in pages of TraceQuery.limit's maximum."""
        query = query.model_copy(update={"sort": "created_at", "limit": MAX_PAGE})
        out: list[ExperimentPublic] = []
        while True:
            page = self.query_traces(query.model_copy(update={"offset": len(out)}))
            out.extend(page.data)
            if len(page.data) < MAX_PAGE or len(out) >= page.count:
                return out

    def every_finding(self, task: str | None = None) -> list[FindingPublic]:
        """Every finding (of ``task`` when given), newest first, read in pages."""
        out: list[FindingPublic] = []
        while True:
            page = self.query_findings(task=task, limit=MAX_PAGE, offset=len(out))
            out.extend(page.data)
            if len(page.data) < MAX_PAGE or len(out) >= page.count:
                return out

    def seen(
        self,
        task: str,
        fingerprint: str,
        *,
        hardware: str | None = None,
        budget: float | None = None,
        short_budget: float | None = None,
    ) -> ExperimentPublic | None:
        """The oldest finished run of this program, if any (``memory.models.seen_query``):
        status keep/discard/crash (``SEEN_STATUSES``: a timeout or an interrupted run does
        not count), role experiment or baseline (a confirmation re-runs a program on
        purpose), on ``hardware`` and with ``budget_s == budget`` when given. With a
        ``short_budget`` (a multi-fidelity swarm), failing that, its oldest short run at
        that budget that was not promoted or failed (a promoted one waits for its full
        run)."""
        page = self.query_traces(seen_query(task, fingerprint, hardware=hardware, budget=budget))
        if page.data or short_budget is None:
            return page.data[0] if page.data else None
        query = seen_query(task, fingerprint, hardware=hardware, budget=short_budget, short=True)
        page = self.query_traces(query)
        return page.data[0] if page.data else None

    def champion(
        self,
        task: str,
        hardware: str | None = None,
        budget: float | None = None,
        *,
        swarm_id: str | None = None,
    ) -> ExperimentPublic | None:
        """THE champion of ``task`` (``memory.models.champion_of``): among programs with at
        least ``MIN_CHAMPION_RUNS`` (2) trusted ``keep`` runs that no verdict chose --
        baseline replicates and re-measures; an experiment's first run and its
        confirmation were selected for looking good and do not count -- the best MEAN over
        those runs among the programs whose mean beats the first one's (the start's) by the
        keep rule's margin at level ``KEEP_ALPHA / contenders`` (``memory.models.beats``,
        with the noise pooled over every measured run, ``Store.noise``); the start while
        none does: a program better than the start only inside the noise, or only in the
        runs that made it a keep, does not take the title.

        Runs count when trusted (run here: ``role != seed``, empty ``source``), on
        ``hardware`` and with ``budget_s == budget`` when given (a trace without a recorded
        budget never matches a budget), from ``swarm_id`` when given. Returned: the oldest
        experiment or baseline trace of the champion."""
        return self.evidence(task, hardware, budget, swarm_id=swarm_id).champion

    def leader(
        self,
        task: str,
        hardware: str | None = None,
        budget: float | None = None,
        *,
        swarm_id: str | None = None,
    ) -> ExperimentPublic | None:
        """The LEADING program of ``task`` (``memory.models.leader_of``): the best mean over
        its trusted measured runs (keep/discard, the runs that made it a keep included),
        however few -- unlike the champion, one lucky run can lead. While a swarm
        re-tests at its end (``--retest end``) the champion stays the start until the
        finals and the leader is what the search has found so far, unconfirmed; it is the
        champion once its runs that no verdict chose beat the start beyond the noise (the
        champion rule). Same filters and trust as
        ``champion``; the oldest experiment or baseline trace of the program, or ``None``
        while no program has a measured run."""
        return self.evidence(task, hardware, budget, swarm_id=swarm_id).leader

    def program_stats(
        self,
        task: str,
        fingerprint: str,
        hardware: str | None,
        budget: float | None = None,
        *,
        swarm_id: str | None = None,
    ) -> RunStats:
        """Mean, count and sample sd of the metrics of one program's trusted keep/discard
        runs (any role but seed: experiment, baseline, confirmation) with a finite metric,
        on ``hardware`` (and ``budget``, ``swarm_id`` when given)."""
        query = _measured_query(task, hardware, budget, swarm_id, fingerprint=fingerprint)
        runs = self.every_trace(query)
        return run_stats([r.metric for r in runs if r.metric is not None])

    def program_metric(
        self,
        task: str,
        fingerprint: str,
        hardware: str,
        budget: float | None = None,
        *,
        swarm_id: str | None = None,
    ) -> float | None:
        """``program_stats(...).mean``: the mean metric of one program (``None`` if it has
        no measured run)."""
        return self.program_stats(task, fingerprint, hardware, budget, swarm_id=swarm_id).mean

    def noise(
        self,
        task: str,
        hardware: str | None,
        budget: float | None,
        *,
        swarm_id: str | None = None,
    ) -> NoiseEstimate:
        """The run-to-run noise of ``task`` on ``hardware`` with run budget ``budget``
        (from ``swarm_id`` when given): the pooled within-program standard deviation of
        the trusted keep/discard runs (any role but seed) with a finite metric, grouped by
        fingerprint, over the programs that ran at least twice
        (``memory.models.pooled_noise``). ``None`` for ``hardware`` or ``budget`` pools
        over every hardware class or budget, which mixes their differences into the noise:
        a judge passes both."""
        return self.evidence(task, hardware, budget, swarm_id=swarm_id).noise

    def evidence(
        self,
        task: str,
        hardware: str | None,
        budget: float | None,
        *,
        swarm_id: str | None = None,
    ) -> Evidence:
        """What judging needs of ``task`` on ``hardware`` with budget ``budget`` (from
        ``swarm_id`` when given), from ONE read of its measured runs: each program's
        ``program_stats``, the ``noise`` and the ``champion``, exactly as those methods
        give them (an agent's iteration reads this once).

        Incremental: the measured runs are kept per store and (task, hardware, budget,
        swarm) in a ``memory._mirror.TraceMirror``, so a call counts them and reads only
        the runs added since the last call (none: the last evidence is returned as it
        was); a new champion is then read whole (``get_trace``)."""
        key = (task, hardware, budget, swarm_id)
        with _EVIDENCE_LOCK:
            caches = _EVIDENCE.setdefault(self, {})
            cache = caches.get(key)
            if cache is None:
                if len(caches) >= _EVIDENCE_KEYS:
                    del caches[next(iter(caches))]  # the oldest key made
                query = _measured_query(task, hardware, budget, swarm_id)
                cache = caches[key] = _EvidenceCache(TraceMirror(query, keep=_light))
        with cache.runs.lock:
            added = cache.runs.refresh(self)
            if added or cache.evidence is None:
                found = _built(cache, added).evidence()
                found = replace(
                    found,
                    champion=self._whole(found.champion, cache.evidence, "champion"),
                    leader=self._whole(found.leader, cache.evidence, "leader"),
                )
                cache.evidence = found
            return cache.evidence

    def _whole(
        self, light: ExperimentPublic | None, held: Evidence | None, field: str
    ) -> ExperimentPublic | None:
        """The champion or leader ``light`` (as the evidence cache holds runs) read whole,
        once per new one: the ``field`` of the ``held`` evidence when it is the same run."""
        if light is None:
            return None
        before = getattr(held, field) if held is not None else None
        return before if before is not None and before.id == light.id else self.get_trace(light.id)

    def insights(
        self, task: str, hardware: str | None = None, budget: float | None = None
    ) -> InsightReport:
        """What the trusted runs of ``task`` say, per hardware class and budget (only
        ``hardware``/``budget`` when given), computed without an LLM
        (``memory.insights``): per knob and direction of move, the mean gain over the base
        in units of the noise, its spread, n and the crash rate by region; free-form edits
        grouped by meaning with what each did; every insight with the ids of its traces
        and stale when all of them were measured on a base the champion has outgrown;
        plus insights imported from packs. Cached per store and task, recomputed when a
        trace or finding of the task was added (reading only the new traces)."""
        from memory.insights import compute_insights

        return compute_insights(self, task, hardware, budget)

    def count(self, query: TraceQuery | None = None) -> int:
        """Number of traces matching ``query`` (all traces if None)."""
        q = (query or TraceQuery()).model_copy(update={"limit": 1, "offset": 0})
        return self.query_traces(q).count
