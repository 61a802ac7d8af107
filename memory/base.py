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
from collections.abc import Sequence
from statistics import fmean

from memory.models import (
    RAN_STATUSES,
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
    Page,
    SearchHit,
    Stats,
    Status,
    SwarmCreate,
    SwarmPublic,
    TraceQuery,
)

# A metric within +-_FLOAT_MAX is finite: the champion's bounds exclude +-inf (and NaN,
# which PostgreSQL sorts above every number and SQLite stores as NULL) in SQL.
_FLOAT_MAX = sys.float_info.max
_PAGE = 1000  # TraceQuery.limit's maximum


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
        fingerprint) and ``AlreadyRan`` if ``seen`` finds a finished run of it.
        Expired or released claims do not count.
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

    def seen(self, task: str, fingerprint: str) -> ExperimentPublic | None:
        """The finished run (keep/discard/crash/timeout) of this program, if any."""
        page = self.query_traces(
            TraceQuery(
                task=task,
                fingerprint=fingerprint,
                status=list(RAN_STATUSES),
                sort="created_at",
                limit=1,
            )
        )
        return page.data[0] if page.data else None

    def champion(
        self,
        task: str,
        hardware: str | None = None,
        budget: float | None = None,
        *,
        swarm_id: str | None = None,
    ) -> ExperimentPublic | None:
        """THE champion of ``task``: the best ``keep`` trace with a finite metric (in its
        direction), trusted only (run here: ``role != seed``, empty ``source``), on
        ``hardware`` and with ``budget_s == budget`` when given (a trace without a recorded
        budget never matches a budget), from ``swarm_id`` when given. Ties: the oldest."""
        page = self.query_traces(
            TraceQuery(
                task=task,
                hardware=hardware,
                budget_s=budget,
                swarm_id=swarm_id,
                trusted=True,
                status=[Status.keep],
                metric_min=-_FLOAT_MAX,
                metric_max=_FLOAT_MAX,
                sort="best",
                limit=1,
            )
        )
        return page.data[0] if page.data else None

    def program_metric(
        self,
        task: str,
        fingerprint: str,
        hardware: str,
        budget: float | None = None,
        *,
        swarm_id: str | None = None,
    ) -> float | None:
        """Mean finite metric of the trusted finished runs (keep/discard) of one program
        on ``hardware`` (and ``budget``, ``swarm_id`` when given); ``None`` if none."""
        query = TraceQuery(
            task=task,
            fingerprint=fingerprint,
            hardware=hardware,
            budget_s=budget,
            swarm_id=swarm_id,
            trusted=True,
            status=[Status.keep, Status.discard],
            metric_min=-_FLOAT_MAX,
            metric_max=_FLOAT_MAX,
            sort="created_at",
            limit=_PAGE,
        )
        values: list[float] = []
        offset = 0
        while True:
            page = self.query_traces(query.model_copy(update={"offset": offset}))
            values.extend(t.metric for t in page.data if t.metric is not None)
            offset += len(page.data)
            if len(page.data) < _PAGE or offset >= page.count:
                break
        return fmean(values) if values else None

    def count(self, query: TraceQuery | None = None) -> int:
        """Number of traces matching ``query`` (all traces if None)."""
        q = (query or TraceQuery()).model_copy(update={"limit": 1, "offset": 0})
        return self.query_traces(q).count
