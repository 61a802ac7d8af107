"""The SQL-backed store: SQLite or PostgreSQL (the truth) + a Chroma index + an embedder.

``SqlStore`` is both the embedded backend (``sqlite:///dir/memory.sqlite`` + a local
``PersistentClient``) and the team backend (``postgresql://...`` + a ``chroma run``
server). Build one through ``memory.get_store``.

Writes go to SQL first and commit; then the rows are embedded and upserted into the index
and marked ``indexed=True`` -- for single writes by a background thread that batches them
(``memory._indexer``), for bulk imports before ``import_records`` returns. Searches and
``index_count`` first wait for this process's pending rows. If embedding or indexing fails
the failure is logged and the rows stay ``indexed=False`` until ``reindex()``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import case, func, update
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, StatementError
from sqlmodel import Session, col, select

from memory._claims import ClaimsMixin
from memory._index import ChromaIndex
from memory._indexer import IndexWriter
from memory._records import RecordsMixin
from memory._rows import finding_row, trace_row
from memory._search import SearchMixin
from memory._sql import (
    create_schema,
    finding_content,
    make_engine,
    to_public_trace,
    trace_content,
)
from memory._tasks import TaskCap
from memory.base import Store
from memory.documents import finding_document, trace_document
from memory.embed import Embedder, second_opinion_for
from memory.errors import BackendUnavailable, Conflict, InvalidInput, NotFound
from memory.models import (
    UNPACKED_ROLES,
    Experiment,
    ExperimentCreate,
    ExperimentPublic,
    Finding,
    FindingCreate,
    ImportResult,
    Lineage,
    Page,
    Role,
    TraceQuery,
    check_args,
    utc,
)
from memory.settings import DEFAULT_MAX_TASKS

log = logging.getLogger(__name__)

_IN_CHUNK = 500  # ids per IN (...) list
_REINDEX_BATCH = 1000


def _refused(exc: BaseException | None) -> InvalidInput:
    """The database (or its driver) refused a value: bad input, never a server error."""
    reason = str(exc).strip().splitlines()[0] if exc is not None and str(exc).strip() else ""
    return InvalidInput(f"a value was refused by the database: {reason or type(exc).__name__}")


def _imported_content(trace: Any) -> dict[str, Any]:
    """What an import compares with a stored trace of the same id: everything but what
    makes a pack's copy evidence (its filled-in ``source``; a baseline or confirmation
    exported as ``seed``: ``UNPACKED_ROLES``), so exporting a swarm and importing it back
    adds nothing and conflicts with nothing."""
    data = trace_content(trace)
    data.pop("source")
    if data["role"] in UNPACKED_ROLES or data["role"] == Role.seed.value:
        data["role"] = Role.seed.value
    return data


class SqlStore(ClaimsMixin, SearchMixin, RecordsMixin, Store):
    """SQL + Chroma + embedder. Thread safe; safe across processes on PostgreSQL with a
    Chroma server. ``location`` says where it lives (for messages)."""

    def __init__(
        self,
        url: str,
        index: ChromaIndex,
        embedder: Embedder,
        location: str = "",
        *,
        max_tasks: int = DEFAULT_MAX_TASKS,
        owner_lock: Any = None,
    ):
        """``max_tasks``: distinct task names accepted (``memory._tasks``); ``owner_lock``:
        released by ``close()`` (the embedded directory's ``memory._lock.DirLock``)."""
        self.url = url
        self.location = location or url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        create_schema(self.engine, self.location)
        self.index = index
        self.embedder = embedder
        self.second_opinion = second_opinion_for(embedder)  # memory._search
        # SQLite allows one writer: serialise this process's writes (WAL keeps reads free).
        self._write_lock: Any = threading.Lock() if self.is_sqlite else contextlib.nullcontext()
        self._indexer = IndexWriter(self._index_rows)
        self._tasks = TaskCap(max_tasks, self._task_names, self.location)
        self._owner_lock = owner_lock
        pending = self._pending_count()
        if pending:
            log.warning(
                "%s: %d rows are not in the vector index; run `labswarm memory reindex`",
                self.location,
                pending,
            )

    def __repr__(self) -> str:
        return f"SqlStore({self.location!r})"

    # -- plumbing ------------------------------------------------------------

    def _pending_count(self) -> int:
        with self._session() as session:
            return sum(
                int(
                    session.exec(
                        select(func.count()).select_from(m).where(col(m.indexed).is_(False))
                    ).one()
                )
                for m in (Experiment, Finding)
            )

    def _task_names(self) -> set[str]:
        """Task names that have traces or findings (what ``max_tasks`` counts)."""
        with self._session() as session:
            names = set(session.exec(select(Experiment.task).distinct()))
            names.update(session.exec(select(Finding.task).distinct()))
        return names

    def _sync_index(self) -> None:
        """Wait until this process's pending rows are indexed (or failed)."""
        self._indexer.flush()

    @contextlib.contextmanager
    def _session(self) -> Iterator[Session]:
        try:
            with Session(self.engine, expire_on_commit=False) as session:
                yield session
        except OperationalError as exc:
            raise BackendUnavailable(f"sql ({self.location}): {exc.orig}") from exc
        except IntegrityError:
            raise  # callers turn it into Conflict
        except DataError as exc:  # PostgreSQL: NUL in text, integer out of range, bad JSON
            raise _refused(exc.orig) from exc
        except StatementError as exc:  # a value the driver could not even send
            if isinstance(exc.orig, UnicodeError | OverflowError | ValueError):
                raise _refused(exc.orig) from exc
            raise
        except (UnicodeError, OverflowError) as exc:  # lone surrogates, huge integers/dates
            raise _refused(exc) from exc

    @contextlib.contextmanager
    def _writing(self) -> Iterator[Session]:
        with self._write_lock, self._session() as session:
            yield session

    def _fetch(self, model: Any, ids: Sequence[str], *where: Any) -> dict[str, Any]:
        """Rows of ``model`` by id (chunked IN lists), as {id: row}."""
        out: dict[str, Any] = {}
        with self._session() as session:
            for i in range(0, len(ids), _IN_CHUNK):
                stmt = select(model).where(col(model.id).in_(ids[i : i + _IN_CHUNK]), *where)
                out.update({r.id: r for r in session.exec(stmt)})
        return out

    def _mark_indexed(self, model: Any, ids: Sequence[str]) -> None:
        with self._writing() as session:
            for i in range(0, len(ids), _IN_CHUNK):
                session.execute(
                    update(model).where(model.id.in_(ids[i : i + _IN_CHUNK])).values(indexed=True)
                )
            session.commit()

    def _index_rows(self, kind: str, rows: Sequence[Any], *, strict: bool = False) -> int:
        """Embed and upsert rows, then mark them indexed. Returns how many were indexed.

        A failure is logged and the rows stay ``indexed=False`` (``strict`` re-raises)."""
        if not rows:
            return 0
        model = Experiment if kind == "trace" else Finding
        document = trace_document if kind == "trace" else finding_document
        try:
            texts = [document(r) for r in rows]
            vectors = self.embedder.embed(texts) if rows else []
        except Exception as exc:
            return self._index_failed(kind, rows, exc, strict)
        groups: dict[tuple[str, str], list[int]] = {}
        for i, row in enumerate(rows):  # traces: a collection per (task, status); findings: task
            part = str(getattr(row.status, "value", row.status)) if kind == "trace" else ""
            groups.setdefault((row.task, part), []).append(i)
        done = 0
        for (task, part), idx in groups.items():
            group = [rows[i] for i in idx]
            try:
                self.index.upsert(
                    kind,
                    task,
                    part,
                    [r.id for r in group],
                    [vectors[i] for i in idx],
                    [texts[i] for i in idx],
                )
            except Exception as exc:
                self._index_failed(kind, group, exc, strict)
                continue
            self._mark_indexed(model, [r.id for r in group])
            for r in group:
                r.indexed = True
            done += len(group)
        return done

    def _index_failed(self, kind: str, rows: Sequence[Any], exc: Exception, strict: bool) -> int:
        log.warning(
            "indexing %d %s(s) failed (they stay in SQL with indexed=False; "
            "`labswarm memory reindex` repairs): %s",
            len(rows),
            kind,
            exc,
        )
        if strict:
            raise BackendUnavailable(f"index ({self.location}): {exc}") from exc
        return 0

    # -- traces --------------------------------------------------------------

    def add_trace(self, trace: ExperimentCreate) -> ExperimentPublic:
        row = trace_row(trace)  # validated, and its public form serialised, before commit
        self._tasks.admit([row.task])
        try:
            with self._writing() as session:
                stored = session.get(Experiment, row.id)
                if stored is None:
                    session.add(row)
                    session.commit()
        except IntegrityError as exc:  # another process inserted the same id just now
            with self._session() as session:
                stored = session.get(Experiment, row.id)
            if stored is None:
                raise Conflict(f"trace {row.id}: rejected by the database: {exc.orig}") from exc
        if stored is not None:
            if trace_content(stored) != trace_content(row):
                raise Conflict(f"trace {row.id}: already stored with different content")
            return to_public_trace(stored)
        public = to_public_trace(row)
        self._indexer.submit("trace", [row])
        return public

    def get_trace(self, trace_id: str) -> ExperimentPublic:
        check_args("trace", id=trace_id)
        with self._session() as session:
            row = session.get(Experiment, trace_id)
        if row is None:
            raise NotFound(f"no experiment with id {trace_id!r}")
        return to_public_trace(row)

    def _trace_filters(self, q: TraceQuery) -> list[Any]:
        e = Experiment
        where: list[Any] = []
        for field in (
            "task",
            "swarm_id",
            "agent_id",
            "parent_id",
            "fingerprint",
            "hardware",
            "budget_s",
        ):
            value = getattr(q, field)
            if value is not None:
                where.append(getattr(e, field) == value)
        if q.trusted:  # memory.models.run_here: not a seed, not imported
            where.append(col(e.role) != Role.seed)
            where.append(col(e.source) == "")
        if q.status:
            where.append(col(e.status).in_(list(q.status)))
        if q.role:
            where.append(col(e.role).in_(list(q.role)))
        if q.metric_min is not None:
            where.append(col(e.metric) >= q.metric_min)
        if q.metric_max is not None:
            where.append(col(e.metric) <= q.metric_max)
        if q.since is not None:
            where.append(col(e.created_at) >= utc(q.since))
        if q.until is not None:
            where.append(col(e.created_at) < utc(q.until))
        return where

    def query_traces(self, query: TraceQuery) -> Page[ExperimentPublic]:
        e = Experiment
        where = self._trace_filters(query)
        created, ident = col(e.created_at), col(e.id)
        metric = col(e.metric)
        order: list[Any]
        if query.sort == "created_at":
            order = [created.asc(), ident.asc()]
        elif query.sort == "-created_at":
            order = [created.desc(), ident.desc()]
        elif query.sort == "metric":
            order = [metric.asc().nulls_last(), created.asc(), ident.asc()]
        elif query.sort == "-metric":
            order = [metric.desc().nulls_last(), created.asc(), ident.asc()]
        else:  # best: in each trace's own direction
            signed = case((col(e.direction) == "maximize", -metric), else_=metric)
            order = [signed.asc().nulls_last(), created.asc(), ident.asc()]
        with self._session() as session:
            total = session.exec(select(func.count()).select_from(e).where(*where)).one()
            rows = session.exec(
                select(e).where(*where).order_by(*order).offset(query.offset).limit(query.limit)
            ).all()
        return Page(data=[to_public_trace(r) for r in rows], count=int(total))

    def lineage(self, trace_id: str) -> Lineage:
        node = self.get_trace(trace_id)
        ancestors: list[ExperimentPublic] = []
        seen = {node.id}
        parent = node.parent_id
        with self._session() as session:
            while parent and parent not in seen:
                row = session.get(Experiment, parent)
                if row is None:
                    break
                seen.add(row.id)
                ancestors.append(to_public_trace(row))
                parent = row.parent_id
            descendants: list[ExperimentPublic] = []
            frontier = [node.id]
            while frontier:
                nxt: list[str] = []
                for i in range(0, len(frontier), _IN_CHUNK):
                    stmt = (
                        select(Experiment)
                        .where(col(Experiment.parent_id).in_(frontier[i : i + _IN_CHUNK]))
                        .order_by(col(Experiment.created_at), col(Experiment.id))
                    )
                    for row in session.exec(stmt):
                        if row.id not in seen:
                            seen.add(row.id)
                            descendants.append(to_public_trace(row))
                            nxt.append(row.id)
                frontier = nxt
        ancestors.reverse()
        return Lineage(experiment=node, ancestors=ancestors, descendants=descendants)

    # -- bulk ----------------------------------------------------------------

    def import_records(
        self, traces: Sequence[ExperimentCreate], findings: Sequence[FindingCreate]
    ) -> ImportResult:
        trace_rows = [trace_row(t) for t in traces]
        finding_rows = [finding_row(f) for f in findings]
        new_traces, skip_t = self._dedupe(trace_rows, Experiment, _imported_content, "trace")
        new_findings, skip_f = self._dedupe(finding_rows, Finding, finding_content, "finding")
        self._tasks.admit(r.task for r in [*new_traces, *new_findings])
        if new_traces or new_findings:
            try:
                with self._writing() as session:
                    session.add_all(new_traces)
                    session.add_all(new_findings)
                    session.commit()
            except IntegrityError as exc:
                raise Conflict(
                    "import: another writer added some of these ids meanwhile; nothing was "
                    "imported, run the import again"
                ) from exc
        self._index_rows("trace", new_traces)
        self._index_rows("finding", new_findings)
        return ImportResult(
            added_traces=len(new_traces),
            added_findings=len(new_findings),
            skipped=skip_t + skip_f,
        )

    def _dedupe(self, rows: list[Any], model: Any, content: Any, what: str) -> tuple[list, int]:
        """Drop rows whose id is already stored (or repeated) with the same content;
        raise Conflict for the same id with other content."""
        unique: dict[str, Any] = {}
        skipped = 0
        for row in rows:
            first = unique.get(row.id)
            if first is None:
                unique[row.id] = row
            elif content(first) == content(row):
                skipped += 1
            else:
                raise Conflict(f"{what} {row.id}: appears twice with different content")
        stored = self._fetch(model, list(unique))
        fresh = []
        for rid, row in unique.items():
            old = stored.get(rid)
            if old is None:
                fresh.append(row)
            elif content(old) == content(row):
                skipped += 1
            else:
                raise Conflict(f"{what} {rid}: already stored with different content")
        return fresh, skipped

    # -- maintenance ---------------------------------------------------------

    def reindex(self, full: bool = False) -> int:
        self._sync_index()
        if full:
            self.index.clear()
            with self._writing() as session:
                session.execute(update(Experiment).values(indexed=False))
                session.execute(update(Finding).values(indexed=False))
                session.commit()
        done = 0
        for kind, model in (("trace", Experiment), ("finding", Finding)):
            while True:
                with self._session() as session:
                    stmt = (
                        select(model)
                        .where(col(model.indexed).is_(False))
                        .order_by(col(model.id))
                        .limit(_REINDEX_BATCH)
                    )
                    rows = list(session.exec(stmt))
                if not rows:
                    break
                done += self._index_rows(kind, rows, strict=True)
        return done

    def index_count(self) -> int:
        self._sync_index()
        return self.index.count()

    def close(self) -> None:
        self._indexer.close()
        self.index.close()
        self.engine.dispose()
        if self._owner_lock is not None:
            self._owner_lock.release()
            self._owner_lock = None
