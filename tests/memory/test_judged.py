"""Trusted judging in the memory (issue 13), against every backend of the contract suite
(``tests/backends.py``: embedded, team, and the HTTP store through the server): what a
verdict was judged against round-trips; the champion is a program with at least two kept
runs no verdict chose (baseline replicates, re-measures) whose MEAN over them beat the
champion before it by the keep rule's margin; the noise is the pooled
within-program sd; a program is "seen" only on its own hardware and budget, by a finished
experiment or baseline; a claim's ``AlreadyRan`` follows the same rule."""

from __future__ import annotations

import math
from typing import Any

import pytest

from memory import (
    MIN_CHAMPION_RUNS,
    AlreadyClaimed,
    AlreadyRan,
    ClaimCreate,
    Conflict,
    ExperimentCreate,
    InvalidInput,
    NoiseEstimate,
    Role,
    RunStats,
    Status,
    Store,
    TraceQuery,
)
from memory._mirror import TraceMirror, created
from memory.base import _EVIDENCE, Evidence, _measured_query, evidence_of
from memory.models import pooled_noise, run_stats
from tests.memory import test_contract
from tests.memory.test_contract import at, trace

store = test_contract.store  # the contract suite's fixture: every backend, emptied per test

TASK = "judged"

# what a verdict was judged against, as a judge records it
JUDGED: dict[str, Any] = {
    "seed": 2**31 - 1,
    "reason": "kept: better by 0.031 over 2 runs (margin 0.012, noise sd 0.004, df 4)",
    "base_metric": 0.998,
    "base_n": 3,
    "judged_metric": 0.967,
    "judged_n": 2,
    "noise_sd": 0.004,
    "noise_n": 6,
    "threshold": 0.012,
}


def run(store: Store, tid: str, metric: float | None, **kw: Any) -> str:
    """One trace of ``TASK``: a keep by an experiment on cpu with a 60 s budget in swarm s1,
    program ``fp-<tid>``, created ``minutes`` after T0, unless ``kw`` says otherwise."""
    minutes = kw.pop("minutes", None)
    data: dict[str, Any] = {
        "task": TASK,
        "hardware": "cpu",
        "budget_s": 60.0,
        "swarm_id": "s1",
        "status": Status.keep,
        "fingerprint": f"fp-{tid}",
    }
    if minutes is not None:
        data["created_at"] = at(minutes)
    data.update(kw)
    store.add_trace(trace(id=tid, metric=metric, **data))
    return tid


def again(store: Store, tid: str, metric: float | None, **kw: Any) -> str:
    """A confirmation of ``tid`` (a re-measure with ``role=Role.remeasure``): its program
    again (same fingerprint, hardware, budget, swarm), ``parent_id`` = ``tid``; a keep
    unless ``kw`` says otherwise."""
    first = store.get_trace(tid)
    n = store.count(TraceQuery(parent_id=tid))
    data: dict[str, Any] = {
        "fingerprint": first.fingerprint,
        "hardware": first.hardware,
        "budget_s": first.budget_s,
        "swarm_id": first.swarm_id,
        "role": Role.confirmation,
        "parent_id": tid,
    }
    data.update(kw)
    return run(store, f"{tid}+c{n}", metric, **data)


def remeasure(store: Store, tid: str, metric: float | None, **kw: Any) -> str:
    """A re-measure of kept ``tid``: a run of its program that no verdict chose."""
    return again(store, tid, metric, role=Role.remeasure, **kw)


# ---------------------------------------------------------------------------
# the judged-against fields
# ---------------------------------------------------------------------------


def test_judged_fields_round_trip_and_default_to_empty(store: Store) -> None:
    added = store.add_trace(
        trace(id="j1", task=TASK, status=Status.keep, metric=0.967, role=Role.experiment, **JUDGED)
    )
    got = store.get_trace("j1")
    assert got == added
    assert {k: getattr(got, k) for k in JUDGED} == JUDGED
    conf = store.add_trace(
        trace(id="j2", task=TASK, role=Role.confirmation, parent_id="j1", fingerprint="fp-j1")
    )
    assert conf.role == Role.confirmation
    listed = store.query_traces(TraceQuery(role=[Role.confirmation]))
    assert [t.id for t in listed.data] == ["j2"]
    # not given: honestly empty, not guessed
    assert (conf.seed, conf.reason, conf.base_metric, conf.base_n) == (None, "", None, None)
    assert (conf.judged_metric, conf.judged_n, conf.noise_sd, conf.noise_n) == (None,) * 4
    assert conf.threshold is None
    # the same id with another judged-against value is other content
    with pytest.raises(Conflict, match="j1"):
        store.add_trace(
            trace(id="j1", task=TASK, status=Status.keep, metric=0.967, **(JUDGED | {"seed": 1}))
        )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seed", -1, "must lie in 0..2147483647"),
        ("seed", 2**31, "must lie in 0..2147483647"),
        ("base_n", -2, "must lie in 0..2147483647"),
        ("judged_n", 2**40, "must lie in 0..2147483647"),
        ("noise_n", 2**31, "must lie in 0..2147483647"),
        ("noise_sd", -0.1, "must not be negative"),
    ],
)
def test_judged_fields_are_checked_at_the_edge(
    store: Store, field: str, value: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):  # the model refuses it itself
        trace(id="bad", task=TASK, **{field: value})
    # an unchecked copy is refused by the store too (HTTP: a 422 naming the field)
    unchecked = ExperimentCreate.model_construct(
        **{**trace(id="bad", task=TASK).model_dump(), field: value}
    )
    with pytest.raises(InvalidInput, match=field):
        store.add_trace(unchecked)
    assert store.count() == 0


@pytest.mark.parametrize("field", ["base_metric", "judged_metric", "noise_sd", "threshold"])
@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_judged_numbers_must_be_finite(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{field}[\\s\\S]*finite"):
        trace(id="bad", task=TASK, **{field: value})


# ---------------------------------------------------------------------------
# champion: >= 2 trusted keep runs no verdict chose, and a mean that beat the champion
# before it
# ---------------------------------------------------------------------------


def test_one_lucky_keep_is_not_the_champion(store: Store) -> None:
    assert MIN_CHAMPION_RUNS == 2
    run(store, "lucky", 0.25, minutes=0)  # the best single run, never repeated
    assert store.champion(TASK) is None
    assert store.champion(TASK, "cpu", 60) is None
    # its confirmation kept it: two kept runs, but both chosen by the keep rule
    again(store, "lucky", 0.3, minutes=1)
    assert store.champion(TASK, "cpu", 60) is None
    # a re-measure that was not kept does not count either
    remeasure(store, "lucky", 0.9, status=Status.discard, minutes=2)
    assert store.champion(TASK, "cpu", 60) is None
    # one kept re-measure is one unselected run: not yet
    remeasure(store, "lucky", 0.5, minutes=3)
    assert store.champion(TASK, "cpu", 60) is None
    # two: now it is
    remeasure(store, "lucky", 0.5, minutes=4)
    champ = store.champion(TASK, "cpu", 60)
    assert champ is not None and champ.id == "lucky"  # the experiment, not a re-run


def test_champion_is_the_best_mean_and_returns_the_oldest_experiment_or_baseline(
    store: Store,
) -> None:
    # the root: two baseline replicates (mean 1.0)
    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    run(store, "root2", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=1)
    assert store.champion(TASK, "cpu", 60).id == "root"  # type: ignore[union-attr]
    # far better in the two runs that made it a keep, never re-measured: not a contender
    run(store, "lucky", 0.125, minutes=2)
    again(store, "lucky", 0.125, minutes=3)
    run(store, "b", 0.625, minutes=4)  # re-measured: mean 0.625 ...
    remeasure(store, "b", 0.5, minutes=5)
    remeasure(store, "b", 0.75, minutes=6)
    run(store, "c", 0.625, minutes=7)  # ... mean 0.625 too: a tie, b ran first
    remeasure(store, "c", 0.375, minutes=8)
    remeasure(store, "c", 0.875, minutes=9)
    # only a confirmation and re-measures, no run of a role memory counts as the
    # program's own (its experiment or a replicate): no head to return, passed over
    run(store, "d", 0.0625, role=Role.confirmation, minutes=10)
    remeasure(store, "d", 0.0625, minutes=11)
    remeasure(store, "d", 0.0625, minutes=12)
    # untrusted or elsewhere: never counted
    for i in range(2):
        run(store, f"seed{i}", 0.01, role=Role.seed, source="pack p", fingerprint="fp-s")
        run(
            store,
            f"imported{i}",
            0.01,
            role=Role.baseline,
            source="https://x.org",
            fingerprint="fp-i",
        )
        run(store, f"gpu{i}", 0.01, role=Role.baseline, hardware="1xH100", fingerprint="fp-gpu")
        run(store, f"b300-{i}", 0.01, role=Role.baseline, budget_s=300.0, fingerprint="fp-300")
        run(store, f"s2-{i}", 0.01, role=Role.baseline, swarm_id="s2", fingerprint="fp-s2")
    champ = store.champion(TASK, "cpu", 60, swarm_id="s1")
    # the noise is pooled over every measured run (selected ones too): sd 0.1398 over 8 df;
    # b beats the root by 0.375 > t(0.95, 8) * 0.1398 * sqrt(1/2 + 1/2) = 0.260
    assert champ is not None and champ.id == "b"
    assert store.program_stats(TASK, "fp-b", "cpu", 60).mean == 0.625
    assert store.program_stats(TASK, "fp-c", "cpu", 60).mean == 0.625
    # c gets a third re-measure, of 0.0 (mean 0.41666), and the pooled noise grows to sd
    # 0.2234 over 9 df: b no longer beats the root (0.375 < 1.833 * 0.2234 = 0.410), c does
    # (0.583 > 1.833 * 0.2234 * sqrt(1/3 + 1/2) = 0.374); its experiment is returned
    remeasure(store, "c", 0.0, minutes=13)
    assert store.champion(TASK, "cpu", 60, swarm_id="s1").id == "c"  # type: ignore[union-attr]
    # the filters still choose among programs with two unselected keeps there
    assert store.champion(TASK, "1xH100").id == "gpu0"  # type: ignore[union-attr]
    assert store.champion(TASK, "cpu", 300).id == "b300-0"  # type: ignore[union-attr]
    assert store.champion(TASK, "cpu", 60, swarm_id="s2").id == "s2-0"  # type: ignore[union-attr]
    assert store.champion(TASK, "cpu", 120) is None


def test_a_program_discarded_against_its_base_is_champion_once_its_unselected_runs_beat_the_start(
    store: Store,
) -> None:
    """A swarm's finalists (``agents.baseline.measure_finalists``) are re-measured whatever
    their first run's verdict: the champion rule judges the runs no verdict chose, so a
    program discarded against its base takes the title when those beat the start, and its
    discarded experiment is what is returned."""
    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    run(store, "root2", 1.1, role=Role.baseline, fingerprint="fp-root", minutes=1)
    run(store, "d", 0.9, status=Status.discard, minutes=2)
    assert store.champion(TASK, "cpu", 60).id == "root"  # type: ignore[union-attr]
    remeasure(store, "d", 0.5, minutes=3)
    assert store.champion(TASK, "cpu", 60).id == "root"  # type: ignore[union-attr]  # one run
    remeasure(store, "d", 0.55, minutes=4)
    champ = store.champion(TASK, "cpu", 60)
    assert champ is not None and champ.id == "d" and champ.status == Status.discard


def test_the_leader_is_the_best_mean_however_few_its_runs_and_the_champion_does_not_move(
    store: Store,
) -> None:
    """While a swarm re-tests at its end, its champion stays the start and its leader is
    what the search found: the best mean over every measured run, one lucky run included."""
    assert store.leader(TASK, "cpu", 60) is None  # nothing measured yet
    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    run(store, "root2", 1.25, role=Role.baseline, fingerprint="fp-root", minutes=1)
    leader = store.leader(TASK, "cpu", 60)
    assert leader is not None and leader.id == "root"  # the start leads while alone
    run(store, "worse", 1.5, status=Status.discard, minutes=2)
    run(store, "lucky", 0.5, minutes=3, diff="+LR = 0.1\n")
    run(store, "tie", 0.5, minutes=4)  # as good, later: the first to run leads
    run(store, "crashed", None, status=Status.crash, minutes=5)
    run(store, "pack", 0.01, role=Role.seed, source="pack p", fingerprint="fp-pack")
    run(store, "gpu", 0.01, hardware="1xH100", fingerprint="fp-gpu")
    leader = store.leader(TASK, "cpu", 60, swarm_id="s1")
    assert leader is not None and leader.id == "lucky"
    assert leader.diff == "+LR = 0.1\n"  # read whole, not as the evidence cache holds it
    assert store.champion(TASK, "cpu", 60, swarm_id="s1").id == "root"  # type: ignore[union-attr]
    # its re-measures are worse than its first run: the tie, measured once, leads now
    remeasure(store, "lucky", 0.75, minutes=6)
    assert store.leader(TASK, "cpu", 60).id == "tie"  # type: ignore[union-attr]
    # re-measured better: mean (1.5 + 3 * 0.25) / 4 = 0.5625, still behind the tie's 0.5
    for minutes in (7, 8, 9):
        remeasure(store, "worse", 0.25, minutes=minutes)
    assert store.leader(TASK, "cpu", 60).id == "tie"  # type: ignore[union-attr]
    # four more at 0.0: mean 2.25 / 8, and its seven unselected runs beat the start beyond
    # the noise: the champion and the leader are one program
    for minutes in (10, 11, 12, 13):
        remeasure(store, "worse", 0.0, minutes=minutes)
    worse = store.program_stats(TASK, "fp-worse", "cpu", 60)
    assert worse.n == 8 and worse.mean == pytest.approx(2.25 / 8)
    assert store.leader(TASK, "cpu", 60).id == "worse"  # type: ignore[union-attr]
    assert store.champion(TASK, "cpu", 60).id == "worse"  # type: ignore[union-attr]
    # the other direction: the highest mean leads
    run(store, "up", 2.0, direction="maximize", task="judged-max", minutes=14)
    run(store, "down", 0.5, direction="maximize", task="judged-max", minutes=15)
    assert store.leader("judged-max").id == "up"  # type: ignore[union-attr]


def test_champion_follows_the_direction_and_moves_only_beyond_the_noise(store: Store) -> None:
    for tid, metrics in (("lo", (0.50, 0.52)), ("hi", (0.53, 0.55)), ("top", (0.9,))):
        run(store, tid, metrics[0], direction="maximize", role=Role.baseline)
        for m in metrics[1:]:
            remeasure(store, tid, m, direction="maximize")
    champ = store.champion(TASK)
    # hi is better by 0.03, inside the margin t(0.95, 2) * 0.01414 * 1 = 0.041; top ran once
    assert champ is not None and champ.id == "lo"
    remeasure(store, "hi", 0.54, direction="maximize")
    remeasure(store, "hi", 0.54, direction="maximize")
    # now sd 0.01 over 4 df: margin 2.132 * 0.01 * sqrt(1/4 + 1/2) = 0.018 < 0.03
    assert store.champion(TASK).id == "hi"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------
# program stats and noise
# ---------------------------------------------------------------------------


def test_program_stats(store: Store) -> None:
    run(store, "p", 1.0, role=Role.baseline, fingerprint="fp-p")
    run(store, "p2", 2.0, status=Status.discard, fingerprint="fp-p")
    again(store, "p", 4.0)
    run(store, "pcrash", None, status=Status.crash, fingerprint="fp-p")
    run(store, "pseed", 100.0, role=Role.seed, source="pack", fingerprint="fp-p")
    run(store, "pgpu", 9.0, hardware="1xH100", fingerprint="fp-p")
    stats = store.program_stats(TASK, "fp-p", "cpu", 60)
    assert isinstance(stats, RunStats)
    assert (stats.n, stats.mean) == (3, pytest.approx(7 / 3))
    # sample sd by hand: deviations -4/3, -1/3, 5/3 -> (16 + 1 + 25) / 9 / 2
    assert stats.sd == pytest.approx(math.sqrt(42 / 9 / 2))
    assert store.program_metric(TASK, "fp-p", "cpu", 60) == stats.mean
    one = store.program_stats(TASK, "fp-p", "1xH100")
    assert (one.mean, one.n, one.sd) == (9.0, 1, None)
    assert store.program_stats(TASK, "fp-none", "cpu") == RunStats(mean=None, n=0, sd=None)


def test_evidence_is_the_stats_noise_and_champion_from_one_read(store: Store) -> None:
    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    run(store, "root2", 1.25, role=Role.baseline, fingerprint="fp-root", minutes=1)
    run(store, "b", 0.5, minutes=2, role=Role.baseline)
    remeasure(store, "b", 0.625, minutes=3)
    run(store, "once", 0.25, status=Status.discard, minutes=4)
    run(store, "b-gpu", 9.0, hardware="1xH100", fingerprint="fp-b")  # elsewhere: not counted
    evidence = store.evidence(TASK, "cpu", 60, swarm_id="s1")
    assert evidence.noise == store.noise(TASK, "cpu", 60, swarm_id="s1")
    assert evidence.noise.df == 2
    # b beats the root by 0.5625 > t(0.95, 2) * 0.1398 * 1 = 0.408
    assert evidence.champion == store.champion(TASK, "cpu", 60, swarm_id="s1")
    assert evidence.champion is not None and evidence.champion.id == "b"
    for fp in ("fp-root", "fp-b", "fp-once", "fp-never"):
        assert evidence.stats(fp) == store.program_stats(TASK, fp, "cpu", 60, swarm_id="s1")
    assert evidence.stats("fp-b").n == 2 and evidence.stats("fp-never").mean is None


def test_evidence_follows_new_runs_reading_only_the_recent_ones(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    run(store, "root2", 1.25, role=Role.baseline, fingerprint="fp-root", minutes=5)
    first = store.evidence(TASK, "cpu", 60, swarm_id="s1")
    assert first.champion is not None and first.champion.id == "root"
    assert store.evidence(TASK, "cpu", 60, swarm_id="s1") is first  # nothing new
    read: list[str] = []
    every = store.every_trace

    def counted(query: TraceQuery) -> list[Any]:
        found = every(query)
        read.extend(t.id for t in found)
        return found

    monkeypatch.setattr(store, "every_trace", counted)
    run(store, "b", 0.5, minutes=10, role=Role.baseline, diff="+DEPTH = 9\n" * 50)
    remeasure(store, "b", 0.625, minutes=11)
    now = store.evidence(TASK, "cpu", 60, swarm_id="s1")
    # only what was created since the newest run held, less the overlap (2 min before 5)
    assert "b" in read and "root2" in read and "root" not in read
    assert now.champion == store.get_trace("b")  # the champion whole, its diff included
    assert now.stats("fp-b").n == 2 and now.stats("fp-root").n == 2
    assert now.noise == store.noise(TASK, "cpu", 60, swarm_id="s1")
    # a run committed late with an old time, beyond the overlap: the count disagrees, so
    # everything is read again and it counts
    run(store, "late", 0.75, role=Role.baseline, fingerprint="fp-root", minutes=-30)
    read.clear()
    late = store.evidence(TASK, "cpu", 60, swarm_id="s1")
    assert "root" in read
    assert late.stats("fp-root").n == 3
    assert late.stats("fp-root") == store.program_stats(TASK, "fp-root", "cpu", 60, swarm_id="s1")
    # a new run that does not change the champion: the champion held is not read again
    whole: list[str] = []
    get = store.get_trace
    monkeypatch.setattr(store, "get_trace", lambda tid: whole.append(tid) or get(tid))
    run(store, "once", 2.0, minutes=12)
    after = store.evidence(TASK, "cpu", 60, swarm_id="s1")
    assert after.stats("fp-once").n == 1 and after is not late
    assert after.champion is late.champion and whole == []


def test_evidence_adds_new_runs_to_its_sums_and_starts_again_for_a_late_one(
    store: Store,
) -> None:
    """``Store.evidence`` adds the runs a refresh brings to the sums it holds when each is
    newer than every run before, and adds all runs again, oldest first, when one is older
    (committed late): either way the evidence of the runs in order."""
    key = (TASK, "cpu", 60, "s1")

    def from_scratch() -> Evidence:
        query = _measured_query(*key)
        return evidence_of(sorted(store.every_trace(query), key=lambda t: (created(t), t.id)))

    def same(a: Evidence, b: Evidence) -> bool:
        ids = [e.champion.id if e.champion is not None else None for e in (a, b)]
        return a.programs == b.programs and a.noise == b.noise and ids[0] == ids[1]

    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    run(store, "root2", 1.25, role=Role.baseline, fingerprint="fp-root", minutes=5)
    store.evidence(*key[:3], swarm_id="s1")
    cache = _EVIDENCE[store][key]
    sums = cache.built
    assert sums is not None and sums.ids == {"root", "root2"}
    run(store, "b", 0.5, minutes=10, role=Role.baseline)
    remeasure(store, "b", 0.625, minutes=11)
    now = store.evidence(*key[:3], swarm_id="s1")
    assert cache.built is sums and sums.ids == {"root", "root2", "b", "b+c0"}  # added to
    assert same(now, from_scratch()) and now.champion is not None
    assert list(now.programs) == ["fp-root", "fp-b"]  # in the order each first ran
    run(store, "late", 0.75, role=Role.baseline, fingerprint="fp-root", minutes=-30)
    late = store.evidence(*key[:3], swarm_id="s1")
    assert cache.built is not sums and cache.built is not None  # all again, oldest first
    assert same(late, from_scratch()) and late.stats("fp-root").n == 3


def test_a_mirror_reads_once_when_a_run_lands_between_its_count_and_its_read(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    run(store, "root", 1.0, role=Role.baseline, fingerprint="fp-root", minutes=0)
    mirror = TraceMirror(TraceQuery(task=TASK))
    assert [t.id for t in mirror.refresh(store)] == ["root"] and set(mirror.traces) == {"root"}
    assert mirror.refresh(store) == []  # nothing new: nothing read, nothing added
    run(store, "a", 0.9, minutes=5)
    count, every = store.count, store.every_trace
    reads: list[TraceQuery] = []

    def count_then_another_lands(query: TraceQuery | None = None) -> int:
        n = count(query)
        run(store, "b", 0.8, minutes=6)  # committed after the count, before the read
        return n

    def read(query: TraceQuery) -> list[Any]:
        reads.append(query)
        return every(query)

    monkeypatch.setattr(store, "count", count_then_another_lands)
    monkeypatch.setattr(store, "every_trace", read)
    # the overlap re-reads "root" too; only what the mirror did not hold is reported added
    assert sorted(t.id for t in mirror.refresh(store)) == ["a", "b"]
    assert set(mirror.traces) == {"root", "a", "b"}
    assert len(reads) == 1 and reads[0].since is not None  # no second, full read


def test_noise_is_the_pooled_within_program_sd(store: Store) -> None:
    # the root: three replicates; a program run twice; a program run once (no information)
    for i, m in enumerate((1.0, 1.5, 2.0)):
        run(store, f"root{i}", m, role=Role.baseline, fingerprint="fp-root")
    run(store, "p", 3.0)
    again(store, "p", 4.0, status=Status.discard)
    run(store, "once", 10.0)
    # not measurements of cpu/60 in s1: never pooled
    run(store, "p-crash", None, status=Status.crash, fingerprint="fp-p")
    run(store, "p-timeout", None, status=Status.timeout, fingerprint="fp-p")
    run(store, "root-seed", 100.0, role=Role.seed, source="pack", fingerprint="fp-root")
    run(store, "root-import", 50.0, source="lab B", fingerprint="fp-root")
    run(store, "root-gpu", 7.0, role=Role.baseline, hardware="1xH100", fingerprint="fp-root")
    run(store, "root-300", 7.0, role=Role.baseline, budget_s=300.0, fingerprint="fp-root")
    run(store, "root-s2", 7.0, role=Role.baseline, swarm_id="s2", fingerprint="fp-root")
    # by hand: root mean 1.5, squares 0.25 + 0 + 0.25; p mean 3.5, squares 0.25 + 0.25;
    # 1.0 over n - groups = 5 - 2 = 3 degrees of freedom
    noise = store.noise(TASK, "cpu", 60, swarm_id="s1")
    assert isinstance(noise, NoiseEstimate)
    assert (noise.n, noise.df, noise.groups, noise.identical) == (5, 3, 2, False)
    assert noise.sd == pytest.approx(math.sqrt(1.0 / 3))
    assert noise == pooled_noise([[1.0, 1.5, 2.0], [3.0, 4.0], [10.0]])
    # elsewhere: one run each, nothing to pool
    assert store.noise(TASK, "1xH100", 60) == NoiseEstimate(
        sd=None, n=0, df=0, groups=0, identical=False
    )
    assert store.noise("no-such-task", "cpu", 60).sd is None
    # without a swarm filter, s2's replicate joins the root's group (1, 1.5, 2, 7)
    both = store.noise(TASK, "cpu", 60)
    assert (both.n, both.df, both.groups) == (6, 4, 2)


def test_identical_replicates_are_flagged(store: Store) -> None:
    run(store, "r0", 1.25, role=Role.baseline, fingerprint="fp-r")
    assert store.noise(TASK, "cpu", 60).sd is None  # one run: no noise yet, not identical
    assert not store.noise(TASK, "cpu", 60).identical
    run(store, "r1", 1.25, role=Role.baseline, fingerprint="fp-r")
    run(store, "q", 2.5)
    again(store, "q", 2.5)
    noise = store.noise(TASK, "cpu", 60)
    assert noise == NoiseEstimate(sd=0.0, n=4, df=2, groups=2, identical=True)
    again(store, "q", 2.5 + 2**-20)  # one run differs: the program does use its seed
    noise = store.noise(TASK, "cpu", 60)
    assert not noise.identical and noise.sd is not None and noise.sd > 0


def test_pooled_noise_and_run_stats_by_hand() -> None:
    est = pooled_noise([[2.0, 4.0], [10.0, 10.0, 13.0], [99.0]])
    # squares: 1 + 1 ; 1 + 1 + 4 -> 8 over 5 - 2 = 3
    assert est.sd == pytest.approx(math.sqrt(8 / 3))
    assert (est.n, est.df, est.groups, est.identical) == (5, 3, 2, False)
    assert pooled_noise([]) == NoiseEstimate(sd=None, n=0, df=0, groups=0, identical=False)
    assert pooled_noise([[1.0], [2.0]]).sd is None
    assert run_stats([3.0]) == RunStats(mean=3.0, n=1, sd=None)
    assert run_stats([0.1, 0.1, 0.1]) == RunStats(mean=0.1, n=3, sd=0.0)


# ---------------------------------------------------------------------------
# seen, and AlreadyRan
# ---------------------------------------------------------------------------


def test_seen_is_per_hardware_and_budget_and_needs_a_finished_run(store: Store) -> None:
    run(store, "a", 1.0, status=Status.discard, hardware="A", fingerprint="fp-x")
    seen = store.seen(TASK, "fp-x", hardware="A", budget=60)
    assert seen is not None and seen.id == "a"
    assert store.seen(TASK, "fp-x").id == "a"  # type: ignore[union-attr]  # anywhere
    assert store.seen(TASK, "fp-x", hardware="A").id == "a"  # type: ignore[union-attr]
    assert store.seen(TASK, "fp-x", hardware="B") is None  # another hardware class
    assert store.seen(TASK, "fp-x", hardware="A", budget=300) is None  # another budget
    assert store.seen(TASK, "fp-x", budget=300) is None
    # a run without a recorded budget never matches a budget
    run(store, "nob", 1.0, hardware="C", budget_s=None, fingerprint="fp-nob")
    assert store.seen(TASK, "fp-nob", hardware="C", budget=60) is None
    assert store.seen(TASK, "fp-nob", hardware="C").id == "nob"  # type: ignore[union-attr]
    # timeout / interrupted / duplicate / invalid: not finished, may run again
    for status in (Status.timeout, Status.interrupted, Status.duplicate, Status.invalid):
        run(store, f"t-{status}", None, status=status, hardware="B", fingerprint="fp-t")
    assert store.seen(TASK, "fp-t") is None
    # a crash is finished
    run(store, "crash", None, status=Status.crash, hardware="B", fingerprint="fp-t")
    assert store.seen(TASK, "fp-t", hardware="B").id == "crash"  # type: ignore[union-attr]
    # a confirmation re-runs on purpose: it never makes a program seen
    run(store, "conf", 1.0, role=Role.confirmation, hardware="A", fingerprint="fp-c")
    assert store.seen(TASK, "fp-c") is None
    # a seed (evidence from a pack) is not a run here; a baseline is
    run(store, "seed", 1.0, role=Role.seed, source="pack", fingerprint="fp-s")
    assert store.seen(TASK, "fp-s") is None
    run(store, "base", 1.0, role=Role.baseline, hardware="A", fingerprint="fp-b")
    assert store.seen(TASK, "fp-b", hardware="A", budget=60).id == "base"  # type: ignore[union-attr]
    assert store.seen(TASK, "fp-b", hardware="B", budget=60) is None


def test_claim_already_ran_follows_seen(store: Store) -> None:
    run(store, "a", 1.0, status=Status.discard, hardware="A", fingerprint="fp-x")

    def claim(fp: str, hardware: str = "", budget: float | None = None) -> str:
        c = store.claim(ClaimCreate(task=TASK, fingerprint=fp, hardware=hardware, budget_s=budget))
        assert (c.hardware, c.budget_s) == (hardware, budget)
        store.release(c.id)
        return c.id

    with pytest.raises(
        AlreadyRan, match="fp-x on hardware 'A' with a budget of 60 s as experiment a "
    ):
        store.claim(ClaimCreate(task=TASK, fingerprint="fp-x", hardware="A", budget_s=60))
    with pytest.raises(AlreadyRan, match="fp-x"):  # no hardware or budget: a run anywhere
        store.claim(ClaimCreate(task=TASK, fingerprint="fp-x"))
    with pytest.raises(AlreadyRan, match="fp-x"):
        store.claim(ClaimCreate(task=TASK, fingerprint="fp-x", hardware="A"))
    claim("fp-x", "B", 60)  # another hardware class
    claim("fp-x", "A", 300)  # another budget
    # not finished, or a confirmation: may be claimed
    run(store, "t", None, status=Status.timeout, hardware="A", fingerprint="fp-t")
    run(store, "i", None, status=Status.interrupted, hardware="A", fingerprint="fp-t")
    claim("fp-t", "A", 60)
    run(store, "conf", 1.0, role=Role.confirmation, hardware="A", fingerprint="fp-c")
    claim("fp-c", "A", 60)
    claim("fp-c")
    # the claim records where it runs; the lock stays one per (task, fingerprint)
    held = store.claim(ClaimCreate(task=TASK, fingerprint="fp-y", hardware="A", budget_s=60))
    (active,) = store.active_claims(TASK)
    assert active == held and (active.hardware, active.budget_s) == ("A", 60.0)
    with pytest.raises(AlreadyClaimed):
        store.claim(ClaimCreate(task=TASK, fingerprint="fp-y", hardware="B", budget_s=60))
    store.release(held.id)
    # a crash is a finished run
    run(store, "crash", None, status=Status.crash, hardware="A", fingerprint="fp-y")
    with pytest.raises(AlreadyRan, match="crash"):
        store.claim(ClaimCreate(task=TASK, fingerprint="fp-y", hardware="A", budget_s=60))
    claim("fp-y", "B", 60)
