"""Input validation at the edge (security review findings 5, 7, 9, 10, 12): every bad value
is an InvalidInput / ValidationError naming the field, on SQLite and on PostgreSQL, and
nothing half-written stays behind; one memory holds a bounded number of task names.

The hashing embedder is used: these tests check storage and refusals, not meaning.

    .venv/bin/pytest tests/memory/test_validation.py -q
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from memory import (
    AgentCreate,
    ClaimCreate,
    ExperimentCreate,
    FindingCreate,
    InvalidInput,
    NotFound,
    Status,
    Store,
    SwarmCreate,
    TraceQuery,
)
from memory.documents import MAX_DOCUMENT_CHARS
from memory.embed import Embedder
from memory.errors import LimitExceeded
from memory.models import MAX_JSON_BYTES, MAX_JSON_DEPTH, storable
from memory.packs import export_pack
from memory.resolve import embedded
from tests.backends import BACKENDS, BackendEnv, Services

SQL_BACKENDS = ["embedded", pytest.param("team", marks=pytest.mark.postgres)]


@pytest.fixture(params=SQL_BACKENDS)
def store(
    request: pytest.FixtureRequest, tmp_path: Path, hash_embedder: Embedder, services: Services
) -> Iterator[Store]:
    env = BackendEnv(tmp_path=tmp_path, embedder=hash_embedder, services=services)
    with BACKENDS[request.param](env) as s:
        yield s


def trace(**fields: Any) -> ExperimentCreate:
    base: dict[str, Any] = {"task": "val", "fingerprint": "fp", "status": Status.discard}
    return ExperimentCreate(**{**base, **fields})


def unchecked(**fields: Any) -> ExperimentCreate:
    """A trace built without validation (as a careless caller could): the store must still
    refuse it."""
    base: dict[str, Any] = trace().model_dump()
    return ExperimentCreate.model_construct(**{**base, **fields})


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


# ---------------------------------------------------------------------------
# non-finite numbers (finding 10)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_metric_is_refused(store: Store, value: float) -> None:
    with pytest.raises(ValidationError, match="metric"):
        trace(metric=value)
    for _ in range(2):  # a retry is refused the same way, never a 409
        with pytest.raises(InvalidInput, match=r"trace: metric: .*finite"):
            store.add_trace(unchecked(id="nan", metric=value))
    assert store.count() == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_gb", math.nan),
        ("duration_s", math.inf),
        ("resources", {"loss": math.nan}),
        ("knobs", {"LR": [0.1, math.inf]}),
    ],
)
def test_non_finite_anywhere_in_a_trace_is_refused(store: Store, field: str, value: Any) -> None:
    with pytest.raises(InvalidInput, match=f"trace: {field}: "):
        store.add_trace(unchecked(**{field: value}))
    assert store.count() == 0


def test_non_finite_in_findings_swarms_and_claims(store: Store) -> None:
    with pytest.raises(ValidationError, match="before"):
        FindingCreate(change="c", outcome="keep", source="s", before=math.nan)
    bad = FindingCreate.model_construct(
        **{**FindingCreate(change="c", outcome="keep", source="s").model_dump(), "after": math.inf}
    )
    with pytest.raises(InvalidInput, match="finding: after"):
        store.add_findings([bad])
    with pytest.raises(ValidationError, match="config"):
        SwarmCreate(task="t", config={"noise": math.nan})
    with pytest.raises(ValidationError, match="ttl_seconds"):
        ClaimCreate(task="t", fingerprint="f", ttl_seconds=math.inf)
    assert store.query_findings().count == 0 and store.list_swarms() == []


def test_identical_retry_is_idempotent(store: Store) -> None:
    t = trace(id="r1", metric=1.5, resources={"loss": 2.0, "steps": [1, 2]}, memory_gb=0.5)
    first = store.add_trace(t)
    again = store.add_trace(t)
    assert again == first and store.count() == 1


def test_storable_makes_program_output_acceptable() -> None:
    printed = {"val_bpb": math.nan, "note": "a\x00b\udc80", "n": 3, "xs": (math.inf, 1.0)}
    t = trace(resources=storable(printed), log_tail=storable("ok\x00"))
    assert t.resources == {"val_bpb": "nan", "note": "ab\ufffd", "n": 3, "xs": ["inf", 1.0]}
    assert t.log_tail == "ok"


# ---------------------------------------------------------------------------
# deep and large JSON fields (finding 7)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 250, 300])
def test_deep_resources_are_refused_and_reads_keep_working(
    store: Store, tmp_path: Path, depth: int
) -> None:
    store.add_trace(trace(id="ok", hypothesis="a normal trace", resources=nested(MAX_JSON_DEPTH)))
    with pytest.raises(InvalidInput, match=f"resources.*deeper than {MAX_JSON_DEPTH}"):
        store.add_trace(unchecked(id="deep", fingerprint="fp2", resources=nested(depth)))
    with pytest.raises(ValidationError, match="resources"):
        trace(resources=nested(depth))
    # every read that listed the row before the fix still answers
    assert [t.id for t in store.query_traces(TraceQuery()).data] == ["ok"]
    assert store.lineage("ok").experiment.id == "ok"
    assert [h.id for h in store.search("a normal trace", kinds=["trace"])] == ["ok"]
    assert export_pack(store, tmp_path / "x.jsonl", name="x") == 1
    assert [t.id for t in store.every_trace(TraceQuery())] == ["ok"]


def test_json_size_limit(store: Store) -> None:
    big = {"blob": "x" * MAX_JSON_BYTES}
    with pytest.raises(InvalidInput, match=f"resources: .* more than {MAX_JSON_BYTES}"):
        store.add_trace(unchecked(resources=big))
    store.add_trace(trace(resources={"blob": "x" * (MAX_JSON_BYTES - 100)}))
    assert store.count() == 1


def test_a_bad_record_in_an_import_writes_nothing(store: Store) -> None:
    good = trace(id="good")
    bad = unchecked(id="bad", fingerprint="fp2", resources=nested(300))
    with pytest.raises(InvalidInput, match="resources"):
        store.import_records([good, bad], [])
    assert store.count() == 0


# ---------------------------------------------------------------------------
# text, integers and datetimes the database refuses (findings 9, 12)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a\x00b", "a\udc80b"])
def test_nul_and_lone_surrogates_are_refused_in_records(store: Store, bad: str) -> None:
    with pytest.raises(ValidationError, match="hypothesis"):
        trace(hypothesis=bad)
    for field in ("task", "hypothesis", "log_tail", "source"):
        with pytest.raises(InvalidInput, match=f"trace: {field}: "):
            store.add_trace(unchecked(**{field: bad}))
    with pytest.raises(InvalidInput, match="trace: resources: .*key"):
        store.add_trace(unchecked(resources={bad: 1}))
    with pytest.raises(ValidationError, match="change"):
        FindingCreate(change=bad, outcome="note", source="s")
    assert store.count() == 0


@pytest.mark.parametrize("bad", ["a\x00b", "a\udc80b"])
def test_nul_and_lone_surrogates_are_refused_in_queries(store: Store, bad: str) -> None:
    store.add_trace(trace(id="t1"))
    with pytest.raises(ValidationError, match="task"):
        TraceQuery(task=bad)
    with pytest.raises(InvalidInput, match="trace.id"):
        store.get_trace(bad)
    with pytest.raises(InvalidInput, match="trace.id"):
        store.lineage(bad)
    with pytest.raises(InvalidInput, match="stats.task"):
        store.stats(task=bad)
    with pytest.raises(InvalidInput, match="findings.task"):
        store.query_findings(task=bad)
    with pytest.raises(InvalidInput, match="search.task"):
        store.search("idea", task=bad)
    with pytest.raises(InvalidInput, match="search.text"):
        store.search(bad)
    with pytest.raises(InvalidInput, match="claims.task"):
        store.active_claims(bad)
    assert store.get_trace("t1").id == "t1"


def test_database_refusals_are_invalid_input(store: Store) -> None:
    """Paths with no model in front of SQL: the database's own refusal (PostgreSQL: NUL in
    text; both: unencodable text) is InvalidInput, never a server error."""
    for bad in ("a\x00b", "a\udc80b"):
        for call in (store.list_swarms, store.list_agents, store.release):
            try:
                result = call(bad)
            except InvalidInput as exc:
                assert "refused by the database" in str(exc)
            except NotFound:
                assert call == store.release
            else:
                assert result == []


def test_integers_out_of_range_are_refused(store: Store) -> None:
    with pytest.raises(ValidationError, match="experiments"):
        AgentCreate(swarm_id="s", name="a", experiments=99999999999999999999)
    agent = AgentCreate.model_construct(
        **{**AgentCreate(swarm_id="s", name="a").model_dump(), "experiments": 2**31}
    )
    with pytest.raises(InvalidInput, match="agent: experiments"):
        store.upsert_agent(agent)
    with pytest.raises(ValidationError, match="offset"):
        TraceQuery(offset=2**63)
    with pytest.raises(InvalidInput, match="integer out of 64-bit range"):
        store.add_trace(unchecked(resources={"n": 2**64}))
    assert store.list_agents() == [] and store.count() == 0


EXTREMES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "1900-01-01T00:00:00Z"]


@pytest.mark.parametrize("when", EXTREMES)
def test_datetime_extremes_are_refused(store: Store, when: str) -> None:
    base = {"task": "val", "fingerprint": "fp", "status": "keep"}
    for field in ("created_at", "started_at", "finished_at"):
        with pytest.raises(ValidationError, match=field):
            ExperimentCreate.model_validate({**base, field: when})
    for field in ("since", "until"):
        with pytest.raises(ValidationError, match=field):
            TraceQuery.model_validate({field: when})
    edge = datetime(2000, 1, 1, tzinfo=UTC)
    stored = store.add_trace(trace(created_at=edge))
    assert stored.created_at == edge
    assert store.query_traces(TraceQuery(since=edge)).count == 1


def test_finding_outcome_is_a_closed_set(store: Store) -> None:
    with pytest.raises(ValidationError, match="outcome"):
        FindingCreate(change="c", outcome="<img src=x onerror=alert(1)>", source="s")  # type: ignore[arg-type]
    for outcome in ("keep", "discard", "crash", "note"):
        store.add_findings([FindingCreate(change=f"c {outcome}", outcome=outcome, source="s")])  # type: ignore[arg-type]
    assert store.query_findings().count == 4


# ---------------------------------------------------------------------------
# resource exhaustion by task names (finding 5) and document size (2.5)
# ---------------------------------------------------------------------------


def test_task_names_are_bounded(tmp_path: Path, hash_embedder: Embedder) -> None:
    """300 distinct task names: the first max_tasks are stored, the rest refused naming the
    limit; the index never holds more collections, nor the process more handles, than the
    documented bounds."""
    from memory._index import MAX_HANDLES

    max_tasks = 80  # above MAX_HANDLES (64), so the handle LRU has to evict
    store = embedded(tmp_path / "m", hash_embedder, max_tasks=max_tasks)
    try:
        refused = []
        for i in range(300):
            try:
                store.add_trace(ExperimentCreate(task=f"t{i}", fingerprint="f", status="keep"))
            except LimitExceeded as exc:
                refused.append(i)
                assert f"max_tasks is {max_tasks}" in str(exc)
        assert refused == list(range(max_tasks, 300))
        assert store.count() == max_tasks
        assert store.index_count() == max_tasks  # waits for the background indexer
        index = store.index  # type: ignore[attr-defined]
        assert index.collection_count() == max_tasks  # one (task, status) collection each
        assert index.cached_handles <= MAX_HANDLES
        # known tasks keep taking records, and an evicted handle is simply opened again
        store.add_trace(ExperimentCreate(task="t0", fingerprint="g", status="discard"))
        assert [h.experiment.task for h in store.search("x", task="t0", limit=5)] == ["t0", "t0"]
        assert index.cached_handles <= MAX_HANDLES
        with pytest.raises(LimitExceeded, match="LABSWARM_MAX_TASKS"):
            store.add_findings([FindingCreate(task="new", change="c", outcome="note", source="s")])
        with pytest.raises(LimitExceeded):
            store.import_records([ExperimentCreate(task="new", fingerprint="f", status="keep")], [])
        assert store.count() == max_tasks + 1
    finally:
        store.close()


def test_stored_document_is_trimmed(store: Store) -> None:
    huge = "warmup " * 200_000  # 1.4 MB hypothesis: stored in SQL, trimmed in the index
    store.add_trace(trace(id="big", hypothesis=huge))
    assert store.get_trace("big").hypothesis == huge
    (hit,) = store.search("warmup", kinds=["trace"], limit=1)
    assert hit.id == "big" and len(hit.text) <= MAX_DOCUMENT_CHARS
    assert "Outcome: discarded" in hit.text
