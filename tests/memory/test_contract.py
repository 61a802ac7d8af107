"""The store contract, run against every backend in ``tests/backends.py``.

Only the public ``Store`` interface is used here, so the HTTP store passes the same suite.
Every test starts from an empty store and ends by checking that the vector index holds
exactly the rows SQL holds.

    .venv/bin/pytest tests/memory/test_contract.py -q
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest

from memory import (
    AgentCreate,
    AlreadyClaimed,
    AlreadyRan,
    ClaimCreate,
    Conflict,
    ExperimentCreate,
    FindingCreate,
    InvalidInput,
    NotFound,
    Role,
    Status,
    Store,
    SwarmCreate,
    TraceQuery,
)
from tests.backends import BACKENDS, BackendEnv

T0 = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)

_MARKS = {"team": [pytest.mark.postgres]}


@pytest.fixture(params=[pytest.param(n, marks=_MARKS.get(n, [])) for n in BACKENDS])
def store(request: pytest.FixtureRequest, backend_env: BackendEnv) -> Iterator[Store]:
    with BACKENDS[request.param](backend_env) as s:
        yield s
        sql_rows = s.count() + s.query_findings(limit=1).count
        assert s.index_count() == sql_rows, "vector index and SQL disagree after the test"


def trace(**kw: object) -> ExperimentCreate:
    data: dict[str, object] = {
        "task": "gpt",
        "fingerprint": "fp-" + str(kw.get("id", time.monotonic_ns())),
        "status": Status.discard,
        "hypothesis": "change something",
    }
    data.update(kw)
    return ExperimentCreate(**data)  # type: ignore[arg-type]


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


# ---------------------------------------------------------------------------
# traces
# ---------------------------------------------------------------------------


def test_add_and_get_round_trip_with_utc_times(store: Store) -> None:
    plus2 = timezone(timedelta(hours=2))
    t = trace(
        id="e1",
        swarm_id="s1",
        agent_id="s1/a0",
        hypothesis="raise the matrix learning rate",
        diff="--- a/train.py\n+++ b/train.py\n-MATRIX_LR = 0.04\n+MATRIX_LR = 0.05\n",
        knobs={"MATRIX_LR": [0.04, 0.05]},
        fingerprint="abc123",
        status=Status.keep,
        metric=0.97,
        memory_gb=44.5,
        resources={"num_steps": 953, "peak_memory_mb": 45000.0},
        log_tail="step 953 ...",
        device="cuda:0",
        hardware="1xH100",
        started_at=datetime(2026, 3, 8, 14, 0, tzinfo=plus2),
        finished_at=datetime(2026, 3, 8, 14, 5, tzinfo=plus2),
        duration_s=300.0,
    )
    added = store.add_trace(t)
    got = store.get_trace("e1")
    assert got == added
    assert got.created_at.tzinfo is not None and got.created_at.utcoffset() == timedelta(0)
    assert got.started_at == datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
    assert got.started_at.utcoffset() == timedelta(0)
    assert got.knobs == {"MATRIX_LR": [0.04, 0.05]}
    assert got.resources["num_steps"] == 953
    assert (got.status, got.metric, got.hardware) == (Status.keep, 0.97, "1xH100")


def test_get_unknown_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFound, match="nope"):
        store.get_trace("nope")


def test_add_is_idempotent_by_id_and_refuses_other_content(store: Store) -> None:
    first = store.add_trace(trace(id="same", metric=1.0, created_at=at(0)))
    again = store.add_trace(trace(id="same", metric=1.0, created_at=at(0)))
    assert again == first
    with pytest.raises(Conflict, match="same"):
        store.add_trace(trace(id="same", metric=2.0, created_at=at(0)))
    assert store.count() == 1
    assert store.get_trace("same").metric == 1.0


def test_invalid_trace_names_the_field_and_stores_nothing(store: Store) -> None:
    with pytest.raises(InvalidInput, match="fingerprint"):
        store.add_trace(trace(fingerprint=""))
    with pytest.raises(InvalidInput, match="task"):
        store.add_trace(trace(task="  "))
    assert store.count() == 0


def _populate(store: Store) -> None:
    rows = [
        ("a", "gpt", "s1", "s1/a0", Status.keep, 0.99, "1xH100", Role.baseline),
        ("b", "gpt", "s1", "s1/a0", Status.keep, 0.97, "1xH100", Role.experiment),
        ("c", "gpt", "s1", "s1/a1", Status.discard, 0.98, "1xH100", Role.experiment),
        ("d", "gpt", "s2", "s2/a0", Status.crash, None, "cpu", Role.experiment),
        ("e", "gpt", "s2", "s2/a0", Status.keep, 0.95, "cpu", Role.experiment),
        ("f", "other", "s3", "s3/a0", Status.keep, 0.50, "cpu", Role.experiment),
    ]
    for i, (tid, task, swarm, agent, status, metric, hw, role) in enumerate(rows):
        store.add_trace(
            trace(
                id=tid,
                task=task,
                swarm_id=swarm,
                agent_id=agent,
                status=status,
                metric=metric,
                hardware=hw,
                role=role,
                fingerprint=f"fp-{tid}",
                created_at=at(i * 10),
            )
        )


def ids(page: object) -> list[str]:
    return [t.id for t in page.data]  # type: ignore[attr-defined]


def test_query_filters(store: Store) -> None:
    _populate(store)
    q = store.query_traces
    assert ids(q(TraceQuery(task="gpt", sort="created_at"))) == ["a", "b", "c", "d", "e"]
    assert ids(q(TraceQuery(swarm_id="s2", sort="created_at"))) == ["d", "e"]
    assert ids(q(TraceQuery(agent_id="s1/a1"))) == ["c"]
    assert ids(q(TraceQuery(status=[Status.crash, Status.discard], sort="created_at"))) == [
        "c",
        "d",
    ]
    assert ids(q(TraceQuery(role=[Role.baseline]))) == ["a"]
    assert ids(q(TraceQuery(hardware="cpu", task="gpt", sort="created_at"))) == ["d", "e"]
    assert ids(q(TraceQuery(metric_min=0.96, metric_max=0.98, sort="metric"))) == ["b", "c"]
    assert ids(q(TraceQuery(fingerprint="fp-e"))) == ["e"]
    assert ids(q(TraceQuery(since=at(10), until=at(30), sort="created_at"))) == ["b", "c"]
    # a since/until in another zone means the same instant
    plus5 = timezone(timedelta(hours=5))
    assert ids(q(TraceQuery(since=at(40).astimezone(plus5)))) == ["f", "e"]


def test_query_sort_and_pagination(store: Store) -> None:
    _populate(store)
    q = store.query_traces
    assert ids(q(TraceQuery(task="gpt"))) == ["e", "d", "c", "b", "a"]  # newest first
    assert ids(q(TraceQuery(task="gpt", sort="metric"))) == ["e", "b", "c", "a", "d"]
    assert ids(q(TraceQuery(task="gpt", sort="-metric"))) == ["a", "c", "b", "e", "d"]
    page = q(TraceQuery(task="gpt", sort="created_at", limit=2, offset=2))
    assert ids(page) == ["c", "d"] and page.count == 5
    assert q(TraceQuery(task="gpt", offset=10)).data == []


def test_best_sort_follows_each_direction(store: Store) -> None:
    for tid, metric, direction in (("lo", 0.2, "maximize"), ("hi", 0.9, "maximize")):
        store.add_trace(
            trace(id=tid, task="acc", status=Status.keep, metric=metric, direction=direction)
        )
    store.add_trace(trace(id="none", task="acc", status=Status.crash, direction="maximize"))
    assert ids(store.query_traces(TraceQuery(task="acc", sort="best"))) == ["hi", "lo", "none"]
    assert store.champion("acc") is None  # one keep each: no program is proven yet
    _proven(store, "lo")
    _proven(store, "hi")
    champ = store.champion("acc")
    assert champ is not None and champ.id == "hi"


def test_seen_and_champion(store: Store) -> None:
    _populate(store)
    store.add_trace(trace(id="dup", fingerprint="fp-x", status=Status.duplicate))
    assert store.seen("gpt", "fp-x") is None  # a refused duplicate did not run
    seen = store.seen("gpt", "fp-d")
    assert seen is not None and seen.id == "d"  # a crash did run
    assert store.seen("other", "fp-d") is None
    assert store.champion("gpt") is None  # single keeps
    for tid in ("a", "b", "e"):
        _proven(store, tid)
    assert store.champion("gpt").id == "e"  # type: ignore[union-attr]
    assert store.champion("gpt", hardware="1xH100").id == "b"  # type: ignore[union-attr]
    assert store.champion("nothing") is None


def _proven(store: Store, tid: str, metric: float | None = None) -> None:
    """Two re-measures of kept trace ``tid`` (its program again, after its verdict: runs no
    verdict chose, ``tid+r0`` and ``tid+r1``) with ``metric`` (default: the same): what a
    program needs to compete for the champion's title."""
    first = store.get_trace(tid)
    for i in range(2):
        store.add_trace(
            trace(
                id=f"{tid}+r{i}",
                task=first.task,
                swarm_id=first.swarm_id,
                hardware=first.hardware,
                budget_s=first.budget_s,
                fingerprint=first.fingerprint,
                direction=first.direction,
                role=Role.remeasure,
                parent_id=tid,
                status=Status.keep,
                metric=first.metric if metric is None else metric,
            )
        )


def _keep(store: Store, tid: str, metric: float | None, **kw: object) -> None:
    """A trace of task ``champ`` (a keep on cpu by swarm s1 unless ``kw`` says otherwise)."""
    data: dict[str, object] = {
        "task": "champ",
        "hardware": "cpu",
        "swarm_id": "s1",
        "status": Status.keep,
    }
    data.update(kw)
    store.add_trace(trace(id=tid, metric=metric, **data))


def test_champion_per_budget(store: Store) -> None:
    _keep(store, "b60", 0.90, resources={"budget_s": 60})  # the column filled from resources
    _keep(store, "b300", 0.50, budget_s=300.0)
    _keep(store, "nob", 0.10)  # no recorded budget
    for tid in ("b60", "b300", "nob"):
        _proven(store, tid)
    store.add_trace(trace(id="crash60", task="champ", status=Status.crash, budget_s=60.0))
    assert store.get_trace("b60").budget_s == 60.0 and store.get_trace("nob").budget_s is None
    assert ids(store.query_traces(TraceQuery(budget_s=60, sort="created_at"))) == [
        "b60",
        "b60+r0",
        "b60+r1",
        "crash60",
    ]
    assert store.champion("champ").id == "nob"  # type: ignore[union-attr]
    assert store.champion("champ", "cpu", 60).id == "b60"  # type: ignore[union-attr]
    assert store.champion("champ", "cpu", 300.0).id == "b300"  # type: ignore[union-attr]
    assert store.champion("champ", "cpu", 120) is None  # no-budget traces never match


def test_budget_column_and_resources_must_agree() -> None:
    with pytest.raises(ValueError, match="budget_s"):
        trace(budget_s=30.0, resources={"budget_s": 60})


def test_champion_is_trusted_only(store: Store) -> None:
    _keep(store, "own", 0.90)
    _keep(store, "base", 0.95, role=Role.baseline)  # a baseline run here is trusted
    _keep(store, "seed", 0.10, role=Role.seed, source="pack karpathy")
    _keep(store, "imported", 0.20, source="https://example.org/run")  # not run here
    _keep(store, "nometric", None)
    trusted = store.query_traces(TraceQuery(task="champ", trusted=True, sort="created_at"))
    assert ids(trusted) == ["own", "base", "nometric"]
    assert store.query_traces(TraceQuery(task="champ")).count == 5  # no filter by default
    _proven(store, "own")
    _proven(store, "base", 0.95)
    _keep(store, "seed2", 0.10, role=Role.seed, source="pack karpathy", fingerprint="fp-seed")
    _keep(store, "imported2", 0.20, source="https://example.org/run", fingerprint="fp-imported")
    assert store.champion("champ").id == "own"  # type: ignore[union-attr]
    assert store.champion("champ", "cpu").id == "own"  # type: ignore[union-attr]


def test_champion_per_swarm_and_hardware(store: Store) -> None:
    _keep(store, "s1cpu", 0.50)
    _keep(store, "s2cpu", 0.30, swarm_id="s2")
    _keep(store, "s1gpu", 0.10, hardware="1xH100")
    for tid in ("s1cpu", "s2cpu", "s1gpu"):
        _proven(store, tid)
    assert store.champion("champ").id == "s1gpu"  # type: ignore[union-attr]
    assert store.champion("champ", "cpu").id == "s2cpu"  # type: ignore[union-attr]
    assert store.champion("champ", "cpu", swarm_id="s1").id == "s1cpu"  # type: ignore[union-attr]
    assert store.champion("champ", "1xH100", swarm_id="s2") is None
    assert store.champion("champ", swarm_id="s3") is None
    assert store.champion("other-task") is None


def test_program_metric(store: Store) -> None:
    same = {"fingerprint": "fp-prog", "budget_s": 60.0}
    _keep(store, "r1", 0.50, **same)
    _keep(store, "r2", 0.70, status=Status.discard, **same)
    _keep(store, "r3", None, status=Status.crash, **same)
    _keep(store, "gpu", 0.10, hardware="1xH100", **same)
    _keep(store, "b300", 0.20, fingerprint="fp-prog", budget_s=300.0)
    _keep(store, "seed", 0.01, role=Role.seed, source="pack p", **same)
    _keep(store, "s2", 0.90, swarm_id="s2", **same)
    # mean of a float sum: approx, not ==
    assert store.program_metric("champ", "fp-prog", "cpu", 60) == pytest.approx(0.70)
    assert store.program_metric("champ", "fp-prog", "cpu", 60, swarm_id="s1") == pytest.approx(0.60)
    assert store.program_metric("champ", "fp-prog", "cpu") == pytest.approx(0.575)
    assert store.program_metric("champ", "fp-prog", "1xH100", 60) == pytest.approx(0.10)
    assert store.program_metric("champ", "fp-prog", "cpu", 120) is None
    assert store.program_metric("champ", "fp-other", "cpu") is None


def test_lineage(store: Store) -> None:
    store.add_trace(trace(id="root", created_at=at(0)))
    store.add_trace(trace(id="kid", parent_id="root", created_at=at(1)))
    store.add_trace(trace(id="grandkid", parent_id="kid", created_at=at(2)))
    store.add_trace(trace(id="kid2", parent_id="root", created_at=at(3)))
    lin = store.lineage("kid")
    assert lin.experiment.id == "kid"
    assert [t.id for t in lin.ancestors] == ["root"]
    assert [t.id for t in lin.descendants] == ["grandkid"]
    lin = store.lineage("grandkid")
    assert [t.id for t in lin.ancestors] == ["root", "kid"]
    lin = store.lineage("root")
    assert [t.id for t in lin.descendants] == ["kid", "kid2", "grandkid"]
    with pytest.raises(NotFound):
        store.lineage("missing")


# ---------------------------------------------------------------------------
# semantic search
# ---------------------------------------------------------------------------

IDEAS = [
    ("lr", Status.keep, "raise the matrix learning rate from 0.04 to 0.05"),
    ("warm", Status.discard, "add a linear warmup of the learning rate for the first 5% of steps"),
    ("depth", Status.discard, "make the transformer deeper: 12 layers instead of 8"),
    ("tie", Status.crash, "tie the input embedding and output projection weights"),
    ("batch", Status.keep, "halve the batch size to take twice as many optimizer steps"),
    ("wd", Status.discard, "add weight decay to the embedding table"),
]


def _ideas(store: Store, task: str = "gpt") -> None:
    for tid, status, text in IDEAS:
        store.add_trace(trace(id=f"{task}-{tid}", task=task, status=status, hypothesis=text))


def test_search_finds_a_paraphrase(store: Store) -> None:
    _ideas(store)
    hits = store.search("use more layers in the network", kinds=["trace"], limit=3)
    assert hits[0].id == "gpt-depth"
    assert hits[0].experiment is not None and hits[0].experiment.id == "gpt-depth"
    assert "deeper" in hits[0].text
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] <= scores[0] <= 1.0
    hits = store.search("same parameters for input and output embeddings", limit=1)
    assert [h.id for h in hits] == ["gpt-tie"]


def test_search_status_and_task_filters(store: Store) -> None:
    _ideas(store, "gpt")
    _ideas(store, "other")
    hits = store.search("learning rate", task="gpt", status=[Status.keep], limit=10)
    assert {h.id for h in hits} == {"gpt-lr", "gpt-batch"}
    assert all(h.experiment.status == Status.keep for h in hits)  # type: ignore[union-attr]
    hits = store.search("learning rate", task="other", limit=10)
    assert len(hits) == 6 and all(h.id.startswith("other-") for h in hits)
    both = store.search("learning rate", kinds=["trace"], limit=12)
    assert len(both) == 12
    assert store.search("learning rate", task="nothing-here") == []


def test_search_rare_status_is_found_past_the_first_fetch(store: Store) -> None:
    # 80 discards nearer to the query than the one crash: the filter must dig deeper
    store.import_records(
        [trace(id=f"n{i}", hypothesis=f"learning rate schedule variant {i}") for i in range(80)]
        + [trace(id="rare", status=Status.crash, hypothesis="rotary embedding base frequency")],
        [],
    )
    hits = store.search("learning rate schedule", status=[Status.crash], limit=5)
    assert [h.id for h in hits] == ["rare"]


def test_search_findings_and_bad_input(store: Store) -> None:
    _ideas(store)
    store.add_findings(
        [
            FindingCreate(
                id="f-warm",
                task="",
                change="learning-rate warmup over the first steps",
                outcome="discard",
                hardware="1xH100",
                source="a test",
            )
        ]
    )
    hits = store.search("warm up the LR at the start", kinds=["finding"], task="gpt", limit=3)
    assert [h.id for h in hits] == ["f-warm"] and hits[0].finding is not None
    hits = store.search("warm up the LR at the start", limit=2)
    assert {h.kind for h in hits} == {"trace", "finding"}
    with pytest.raises(InvalidInput, match=r"text|\bq\b"):  # the HTTP store's query param is q
        store.search("   ")
    with pytest.raises(InvalidInput, match="kinds"):
        store.search("x", kinds=["bogus"])
    with pytest.raises(InvalidInput, match="limit"):
        store.search("x", limit=0)


# ---------------------------------------------------------------------------
# claims
# ---------------------------------------------------------------------------


def test_claim_release_and_refusals(store: Store) -> None:
    c = store.claim(ClaimCreate(task="gpt", fingerprint="p1", agent_id="s/a0", hypothesis="h"))
    assert c.created_at.utcoffset() == timedelta(0) and c.expires_at > c.created_at
    assert [x.id for x in store.active_claims()] == [c.id]
    with pytest.raises(AlreadyClaimed, match="p1"):
        store.claim(ClaimCreate(task="gpt", fingerprint="p1", agent_id="s/a1"))
    other = store.claim(ClaimCreate(task="other", fingerprint="p1"))  # tasks are separate
    assert [x.id for x in store.active_claims("gpt")] == [c.id]
    released = store.release(c.id)
    assert released.released_at is not None
    assert store.release(c.id).released_at == released.released_at  # idempotent
    assert [x.id for x in store.active_claims()] == [other.id]
    again = store.claim(ClaimCreate(task="gpt", fingerprint="p1"))
    assert again.id != c.id
    with pytest.raises(NotFound):
        store.release("no-such-claim")


def test_expired_claims_stop_counting(store: Store) -> None:
    # 3 s: the second claim must arrive while the first holds, through HTTP on a loaded
    # 2-core machine too (with 0.5 s a CI run once saw it arrive after the expiry)
    short = store.claim(ClaimCreate(task="gpt", fingerprint="p2", ttl_seconds=3))
    with pytest.raises(AlreadyClaimed):
        store.claim(ClaimCreate(task="gpt", fingerprint="p2"))
    time.sleep(3.3)
    assert store.active_claims() == []
    taken = store.claim(ClaimCreate(task="gpt", fingerprint="p2"))
    assert taken.id != short.id
    assert [x.id for x in store.active_claims()] == [taken.id]


def test_claim_refused_when_already_ran(store: Store) -> None:
    store.add_trace(trace(id="ran", fingerprint="p3", status=Status.discard))
    store.add_trace(trace(id="refused", fingerprint="p4", status=Status.duplicate))
    with pytest.raises(AlreadyRan, match="ran"):
        store.claim(ClaimCreate(task="gpt", fingerprint="p3"))
    assert store.claim(ClaimCreate(task="gpt", fingerprint="p4")).fingerprint == "p4"
    # the model refuses these itself; unchecked copies must be refused by the store too
    bad = ClaimCreate.model_construct
    with pytest.raises(InvalidInput, match="ttl_seconds"):
        store.claim(bad(task="gpt", fingerprint="p5", ttl_seconds=0))
    with pytest.raises(InvalidInput, match="ttl_seconds"):  # would overflow a datetime
        store.claim(bad(task="gpt", fingerprint="p5", ttl_seconds=1e300))
    assert [c.fingerprint for c in store.active_claims("gpt")] == ["p4"]


# ---------------------------------------------------------------------------
# findings, swarms, agents, import, stats, reindex
# ---------------------------------------------------------------------------


def finding(fid: str, **kw: object) -> FindingCreate:
    data: dict[str, object] = {
        "id": fid,
        "task": "gpt",
        "change": f"change {fid}",
        "outcome": "keep",
        "before": 1.0,
        "after": 0.9,
        "hardware": "1xH100",
        "source": "test",
    }
    data.update(kw)
    return FindingCreate(**data)  # type: ignore[arg-type]


def test_findings_add_list_and_idempotency(store: Store) -> None:
    out = store.add_findings([finding("f1"), finding("f2", task="", hardware="cpu")])
    assert [f.id for f in out] == ["f1", "f2"]
    assert store.add_findings([finding("f1")])[0] == out[0]
    with pytest.raises(Conflict):
        store.add_findings([finding("f1", after=0.5)])
    store.add_findings([finding("f3", task="other")])
    page = store.query_findings(task="gpt")
    assert {f.id for f in page.data} == {"f1", "f2"} and page.count == 2
    assert [f.id for f in store.query_findings(hardware="cpu").data] == ["f2"]
    assert store.query_findings(limit=1).count == 3
    with pytest.raises(InvalidInput, match="source"):
        store.add_findings([finding("f4", source="")])
    assert store.query_findings().count == 3


def test_swarms_and_agents(store: Store) -> None:
    s = store.upsert_swarm(SwarmCreate(id="sw", task="gpt", name="first"))
    assert s.created_at.utcoffset() == timedelta(0)
    s2 = store.upsert_swarm(SwarmCreate(id="sw", task="gpt", name="first", status="stopped"))
    assert s2.status == "stopped" and s2.created_at == s.created_at
    store.upsert_swarm(SwarmCreate(id="sw2", task="other"))
    assert [x.id for x in store.list_swarms("gpt")] == ["sw"]
    a = store.upsert_agent(AgentCreate(swarm_id="sw", name="a1", device="cpu"))
    assert a.id == "sw/a1"
    store.upsert_agent(AgentCreate(swarm_id="sw", name="a0", status="running", experiments=3))
    store.upsert_agent(AgentCreate(swarm_id="sw", name="a1", status="stopped"))
    agents = store.list_agents("sw")
    assert [(x.name, x.status) for x in agents] == [("a0", "running"), ("a1", "stopped")]
    assert store.list_agents("none") == []


def test_import_records_all_or_nothing_and_idempotent(store: Store) -> None:
    traces = [trace(id=f"i{i}", created_at=at(i)) for i in range(5)]
    result = store.import_records(traces, [finding("fi")])
    assert (result.added_traces, result.added_findings, result.skipped) == (5, 1, 0)
    result = store.import_records(traces, [finding("fi")])
    assert (result.added_traces, result.added_findings, result.skipped) == (0, 0, 6)
    bad = [trace(id="new1"), trace(id="i0", metric=123.0, created_at=at(0))]
    with pytest.raises(Conflict, match="i0"):
        store.import_records(bad, [])
    assert store.count() == 5  # new1 was not imported either
    with pytest.raises(NotFound):
        store.get_trace("new1")


def test_stats(store: Store) -> None:
    _populate(store)
    store.add_trace(trace(id="dup", status=Status.duplicate, created_at=at(60)))
    store.add_findings([finding("f1")])
    store.claim(ClaimCreate(task="gpt", fingerprint="zz"))
    st = store.stats(task="gpt")
    assert st.total == 6
    assert st.by_status == {"keep": 3, "discard": 1, "crash": 1, "duplicate": 1}
    assert st.keep_rate == pytest.approx(2 / 3)  # keeps / (keeps+discards), no baselines
    assert st.kept_changes == 2  # b and e; a, a baseline replicate, is a measurement
    assert st.duplicates_refused == 1
    # b..e: 4 runs in 30 min; the refused duplicate (at 60) never ran
    assert st.experiments_per_hour == pytest.approx(4 / (30 / 60))
    assert st.findings == 1 and st.active_claims == 1
    assert st.first_at == at(0) and st.last_at == at(60)
    assert store.stats(swarm_id="s2").by_status == {"crash": 1, "keep": 1}
    # the task names a filter takes, with their traces, most recently active first
    assert st.tasks == {"gpt": 6}
    assert list(store.stats().tasks.items()) == [("gpt", 6), ("other", 1)]  # dup: 60, f: 50
    assert store.stats(swarm_id="s3").tasks == {"other": 1}
    store.add_trace(trace(id="z1", task="b-task", created_at=at(61)))
    store.add_trace(trace(id="z2", task="a-task", created_at=at(61)))  # a tie: by name
    order = [("a-task", 1), ("b-task", 1), ("gpt", 6), ("other", 1)]
    assert list(store.stats().tasks.items()) == order
    empty = store.stats(task="none")
    assert empty.total == 0 and empty.keep_rate is None and empty.experiments_per_hour is None
    assert empty.tasks == {}
    # a seeded run of another swarm is judged like any experiment
    store.add_trace(trace(id="seeded", status=Status.discard, role=Role.seed, created_at=at(70)))
    assert store.stats(task="gpt").keep_rate == pytest.approx(2 / 4)


def test_stats_count_a_confirmation_as_a_run_not_as_a_decision(store: Store) -> None:
    _populate(store)
    store.add_trace(
        trace(id="b-again", parent_id="b", fingerprint="fp-b", role=Role.confirmation,
              status=Status.keep, metric=0.96, created_at=at(60))
    )  # fmt: skip
    st = store.stats(task="gpt")
    assert st.keep_rate == pytest.approx(2 / 3), "a confirmed pair is one keep"
    assert st.experiments_per_hour == pytest.approx(5 / (50 / 60)), "b..b-again: 5 runs"


def test_reindex_rebuilds_from_sql(store: Store) -> None:
    _ideas(store)
    store.add_findings([finding("f1")])
    assert store.reindex() == 0  # nothing pending
    assert store.reindex(full=True) == 7
    assert store.index_count() == 7
    assert store.search("more layers", kinds=["trace"], limit=1)[0].id == "gpt-depth"
