"""Runs at several budgets (multi-fidelity): with a short budget, each new program runs at
that budget first and at the swarm's full budget only when its short run ranks among the
best fraction of the task's short runs; both rungs are in memory, linked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from optuna.trial import TrialState

from agents.devices import cpu_devices
from agents.judge import Rules, judge_short, short_run_agreement
from agents.knobs import set_knobs
from agents.program import Program, apply_edits
from agents.proposers.base import ProposalRequest
from agents.proposers.builtin import BuiltinProposer
from agents.runner import RunResult
from agents.swarm import Swarm, SwarmConfig, SwarmError
from agents.task import load_task
from memory.models import (
    RAN_STATUSES,
    RUN_ROLES,
    ExperimentCreate,
    ExperimentPublic,
    Role,
    Status,
    TraceQuery,
)
from tests.agents.conftest import edit_proposal, fixed_factory, make_task

DEV = cpu_devices(1, threads=1)[0]

MODES = """\
MODE = "a"  # choices: a | b | c
print("---")
print("val_loss:", {"a": 1.0, "b": 2.0, "c": 0.5}[MODE])
"""


def _result(metric: float | None, status: str = "ok") -> RunResult:
    return RunResult(status=status, returncode=0 if status == "ok" else 1, metric=metric)


def test_a_short_run_is_promoted_when_it_ranks_among_the_best_fraction():
    rules = Rules(promote=1 / 3)
    rung = [1.0, 2.0, 3.0, 4.0, 5.0]  # with the new run: 6 short runs, the best 2 promoted
    first = judge_short(_result(0.5), rung, "minimize", rules)
    assert first.status == Status.keep and "ranks 1 of 6" in first.reason
    assert judge_short(_result(1.5), rung, "minimize", rules).status == Status.keep
    third = judge_short(_result(2.5), rung, "minimize", rules)
    assert third.status == Status.discard and "ranks 3 of 6 short runs" in third.reason
    assert "the best 2 are promoted" in third.reason
    # maximize: the largest is best
    assert judge_short(_result(4.5), rung, "maximize", rules).status == Status.keep
    assert judge_short(_result(3.5), rung, "maximize", rules).status == Status.discard
    # with fewer runs than 1 / promote, only the best so far goes on
    assert judge_short(_result(9.0), [], "minimize", rules).status == Status.keep
    assert judge_short(_result(9.0), [1.0], "minimize", rules).status == Status.discard
    assert judge_short(_result(0.9), [1.0], "minimize", rules).status == Status.keep
    # a failure or an implausible metric is never promoted
    crashed = judge_short(
        RunResult(status="crash", returncode=1, metric=None, error="boom"), [], "minimize", rules
    )
    assert crashed.status == Status.crash
    bounded = Rules(promote=1 / 3, metric_min=0.0)
    assert judge_short(_result(-1.0), [], "minimize", bounded).status == Status.invalid


def _pair(i: int, short: float | None, full: float | None, **kw: object) -> list[ExperimentPublic]:
    """A promoted short run and the full run that names it, with their metrics."""
    common = {"task": "quad", "fingerprint": f"p{i}", "created_at": datetime.now(UTC)}
    return [
        ExperimentPublic(id=f"s{i}", role=Role.short, status=Status.keep, metric=short, **common),
        ExperimentPublic(
            id=f"f{i}",
            status=Status.discard,
            metric=full,
            short_id=f"s{i}",
            **{"role": Role.experiment, **common, **kw},
        ),
    ]


def test_the_short_runs_agreement_with_full_runs_by_hand():
    """Spearman's rank correlation of promoted programs' short and full metrics."""
    same = [
        t for i, (a, b) in enumerate([(1, 10), (2, 20), (3, 30), (4, 40)]) for t in _pair(i, a, b)
    ]
    got = short_run_agreement(same)
    assert got is not None and got.pairs == 4 and got.rho == pytest.approx(1.0)
    # ranks 1 2 3 4 against 2 1 4 3: d^2 = 4, rho = 1 - 6 * 4 / (4 * 15) = 0.6
    swapped = [(1, 20), (2, 10), (3, 40), (4, 30)]
    got = short_run_agreement([t for i, (a, b) in enumerate(swapped) for t in _pair(i, a, b)])
    assert got is not None and got.rho == pytest.approx(0.6)
    reverse = [t for i, (a, b) in enumerate([(1, 40), (2, 30), (3, 20)]) for t in _pair(i, a, b)]
    got = short_run_agreement(reverse)
    assert got is not None and got.pairs == 3 and got.rho == pytest.approx(-1.0)
    # what is not a pair: a full run that crashed, one whose short run is not among the
    # traces, a re-measure naming a short run; fewer than 3 pairs, or one side constant
    crashed = _pair(7, 5.0, None)
    orphan = _pair(8, 6.0, 60.0)[1:]
    remeasure = _pair(9, 7.0, 70.0, role=Role.remeasure)
    two = [t for i, (a, b) in enumerate([(1, 10), (2, 20)]) for t in _pair(i, a, b)]
    assert short_run_agreement(two + crashed + orphan + remeasure) is None
    flat = [t for i, (a, b) in enumerate([(1, 10), (2, 10), (3, 10)]) for t in _pair(i, a, b)]
    assert short_run_agreement(flat) is None


def test_promoted_short_runs_and_their_full_runs_are_linked_in_memory(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    config = SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"),
        agents=2, max_experiments=5, short_budget=0.5,
    )  # fmt: skip
    swarm = Swarm(config, store)
    result = swarm.run()
    assert result.errors == []
    traces = store.every_trace(TraceQuery(task="quad", swarm_id=swarm.swarm_id))
    by_id = {t.id: t for t in traces}
    shorts = [t for t in traces if t.role == Role.short]
    full = [
        t
        for t in traces
        if t.role == Role.experiment and t.status in (Status.keep, Status.discard, Status.crash)
    ]
    assert shorts and full
    assert all(t.budget_s == 0.5 for t in shorts)
    assert {t.status for t in shorts} <= {Status.keep, Status.discard, Status.crash}
    assert {Status.keep, Status.discard} <= {t.status for t in shorts}  # both ways happen
    # every full run came from a promoted short run of its program, at half its budget
    for run in full:
        assert run.budget_s == 1.0
        short = by_id[run.short_id]
        assert short.role == Role.short and short.status == Status.keep
        assert short.fingerprint == run.fingerprint and short.parent_id == run.parent_id
        assert short.knobs == run.knobs and short.hypothesis == run.hypothesis
    # ... and a program not promoted never ran at the full budget
    promoted = {t.id for t in shorts if t.status == Status.keep}
    assert {run.short_id for run in full} <= promoted
    dropped = {t.fingerprint for t in shorts if t.status != Status.keep}
    assert not dropped & {t.fingerprint for t in traces if t.budget_s == 1.0}
    # a short run is one of its agent's experiments (they count toward --max-experiments);
    # the finals after the search (--retest auto: end) re-measure full-budget programs only
    finals = [t for t in traces if t.hypothesis.startswith("final re-measure")]
    assert finals and all(t.role == Role.remeasure and t.budget_s == 1.0 for t in finals)
    measured = {t.fingerprint for t in full} | {
        t.fingerprint for t in traces if t.role == Role.baseline
    }
    assert {by_id[t.parent_id].fingerprint for t in finals} <= measured
    for agent in store.list_agents(swarm.swarm_id):
        ran = [
            t for t in traces if t.agent_id == agent.id and t.role in RUN_ROLES and t not in finals
        ]
        assert agent.experiments == len([t for t in ran if t.status in RAN_STATUSES])
        assert any(t.role == Role.short for t in ran)
    # the swarm records its setting
    row = next(s for s in store.list_swarms("quad") if s.id == swarm.swarm_id)
    assert row.config["short_budget"] == 0.5 and row.config["promote"] == pytest.approx(1 / 3)
    # the end summary says how the short runs ranked what they promoted
    import io

    from rich.console import Console

    from agents.view import summary

    agreement = short_run_agreement(traces)
    pairs = [t for t in full if t.metric is not None and by_id[t.short_id].metric is not None]
    out = io.StringIO()
    Console(file=out, width=400).print(summary(swarm, traces))
    sides = ({by_id[t.short_id].metric for t in pairs}, {t.metric for t in pairs})
    if len(pairs) < 3 or min(len(side) for side in sides) < 2:  # nothing to rank: no line
        assert agreement is None and "short runs against full runs" not in out.getvalue()
    else:
        assert agreement is not None and agreement.pairs == len(pairs)
        line = f"short runs against full runs: Spearman rank correlation {agreement.rho:.2f}"
        assert f"{line} over the {len(pairs)} programs the short runs promoted" in out.getvalue()


def test_a_short_budget_must_be_below_the_swarm_s_budget(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    for short, promote, field in ((1.0, 0.5, "short_budget"), (0.5, 1.5, "promote")):
        config = SwarmConfig(
            task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"),
            short_budget=short, promote=promote,
        )  # fmt: skip
        with pytest.raises(SwarmError, match=field):
            Swarm(config, store)


def _record(store, task, program, status, metric, parent, knobs, role, budget):
    return store.add_trace(
        ExperimentCreate(
            task=task.name, fingerprint=program.fingerprint, status=status, metric=metric,
            parent_id=parent, knobs=knobs, hardware=DEV.hardware, role=role,
            metric_name="val_loss", budget_s=budget,
        )
    )  # fmt: skip


def _after_short_runs(tmp_path, store, b_run, c_run):
    """A task whose root (MODE a) ran at 1.0 and whose MODE b and MODE c ran short at
    0.5 s (``b_run``, ``c_run``: status and metric); the builtin's proposal after them:
    (root, b, c, the proposer, its proposal)."""
    task = load_task(make_task(tmp_path / "m", MODES, name="modes"))
    root = Program.read(task.root, task.editable)
    base = _record(store, task, root, Status.keep, 1.0, None, {}, Role.baseline, 1.0)
    b = set_knobs(root, {"MODE": "b"})
    c = set_knobs(root, {"MODE": "c"})
    _record(store, task, b, *b_run, base.id, {"MODE": ["a", "b"]}, Role.short, 0.5)
    _record(store, task, c, *c_run, base.id, {"MODE": ["a", "c"]}, Role.short, 0.5)
    prop = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=0, budget=1.0)
    request = ProposalRequest(
        task=task, agent_id="s/agent-0", device=DEV, store=store, base=root, base_trace=None,
        base_metric=None, champion=None, budget=1.0,
    )  # fmt: skip
    return root, b, c, prop, prop.propose(request)


def test_the_builtin_takes_a_short_run_not_promoted_as_a_pruned_trial(tmp_path, store):
    # b's short run was not promoted; c's was, and its full run has not ended yet
    root, _, c, prop, proposal = _after_short_runs(
        tmp_path, store, (Status.discard, 2.0), (Status.keep, 0.4)
    )
    trials = prop.study.get_trials(deepcopy=False)
    pruned = [
        (t.params["MODE"], t.intermediate_values) for t in trials if t.state == TrialState.PRUNED
    ]
    assert pruned == [("b", {500: 2.0})]
    finished = [(t.params["MODE"], t.value) for t in trials if t.state == TrialState.COMPLETE]
    # a promoted short run is no trial (its full run will be), nor is the root's replicate
    assert finished == [], "a promoted short run is no trial: its full run will be"
    # b is never proposed again (nor a, the root): the one program left is c
    assert apply_edits(root, proposal.edits).fingerprint == c.fingerprint


def test_the_builtin_may_propose_again_a_program_whose_short_run_timed_out(tmp_path, store):
    """The builtin's "seen" is memory's (``SHORT_SEEN_STATUSES``): a short run that was not
    promoted or crashed ends its program, one that timed out does not."""
    root, b, c, _, proposal = _after_short_runs(
        tmp_path, store, (Status.crash, None), (Status.timeout, None)
    )
    assert apply_edits(root, proposal.edits).fingerprint == c.fingerprint
    for program in (b, c):  # memory agrees
        seen = store.seen("modes", program.fingerprint, budget=1.0, short_budget=0.5)
        assert (seen is not None) == (program is b)


def test_a_cluster_agent_lost_during_a_short_run_records_it_as_one(tmp_path, store):
    """``settle_claims`` (a Ray agent's node died): a claim with no short run in memory was
    cut off during its short run; one promoted from its short run, during its full run;
    one whose short run was not promoted had nothing in flight."""
    from agents.cluster.recover import settle_claims
    from agents.tracing import Author
    from memory.models import ClaimCreate

    task = load_task(make_task(tmp_path / "t"))
    author = Author(task, "sw", "sw/agent-0", DEV, 1.0)
    fps = {"cut-short": "fp-a", "cut-full": "fp-b", "dropped": "fp-c"}
    for fp in fps.values():
        store.claim(
            ClaimCreate(task=task.name, fingerprint=fp, swarm_id="sw", agent_id="sw/agent-0")
        )
    for name, status in (("cut-full", Status.keep), ("dropped", Status.discard)):
        store.add_trace(
            ExperimentCreate(
                task=task.name, fingerprint=fps[name], status=status, metric=1.0,
                role=Role.short, agent_id="sw/agent-0", swarm_id="sw", hardware=DEV.hardware,
                budget_s=0.5, metric_name="val_loss",
            )
        )  # fmt: skip
    written = settle_claims(store, author, short_budget=0.5)
    assert len(written) == 2 and store.active_claims(task.name) == []
    cut = {store.get_trace(i).fingerprint: store.get_trace(i) for i in written}
    assert set(cut) == {fps["cut-short"], fps["cut-full"]}
    short, full = cut[fps["cut-short"]], cut[fps["cut-full"]]
    assert (short.role, short.budget_s, short.status) == (Role.short, 0.5, Status.interrupted)
    assert (full.role, full.budget_s, full.status) == (Role.experiment, 1.0, Status.interrupted)


def test_the_rung_holds_only_short_runs_this_installation_made(tmp_path, store):
    """A short run written with a ``source`` (a server write from elsewhere) is evidence:
    it never takes a place in the rung a promotion is decided by."""
    from agents.nodes import short_rung

    task_dir = make_task(tmp_path / "t")
    config = SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"),
        agents=1, max_experiments=1, short_budget=0.5,
    )  # fmt: skip
    swarm = Swarm(config, store)
    assert swarm.run().errors == []
    mine = store.every_trace(TraceQuery(task="quad", role=[Role.short]))
    assert len(mine) == 1 and mine[0].metric is not None
    for source, metric in (("", 0.001), ("http://elsewhere", -5.0)):
        store.add_trace(
            ExperimentCreate(
                task="quad", fingerprint=f"fp{metric}", status=Status.discard, metric=metric,
                role=Role.short, hardware=mine[0].hardware, budget_s=0.5, source=source,
                metric_name="val_loss",
            )
        )  # fmt: skip

    class Ctx:  # what short_rung reads of an agent's context: the swarm's agent's
        task = load_task(task_dir)
        device = swarm.devices[0]

    Ctx.store = store  # type: ignore[attr-defined]
    rung = short_rung(Ctx(), 0.5, but="none")  # type: ignore[arg-type]
    assert sorted(rung) == sorted([mine[0].metric, 0.001])


def test_a_program_whose_short_run_was_not_promoted_is_not_run_again(tmp_path, store):
    """``Store.seen`` with the swarm's short budget: a program that ended at the short rung
    (not promoted, or failed) already ran; proposed again it is refused as a duplicate
    naming its short run, and no device is spent on it."""
    task_dir = make_task(tmp_path / "t")
    worse = edit_proposal("LR far too high", "LR = 0.1  #", "LR = 30.0  #")
    factory = fixed_factory({"agent-0": [worse, worse.model_copy(deep=True)]})
    config = SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"),
        agents=1, max_experiments=4, short_budget=0.5,
    )  # fmt: skip
    swarm = Swarm(config, store, proposer_factory=factory)
    # three better short runs at 0.5 s on this hardware class: the new one ranks 4 of 4
    for n in range(3):
        store.add_trace(
            ExperimentCreate(
                task="quad", fingerprint=f"better-{n}", status=Status.discard, metric=0.0,
                role=Role.short, hardware=swarm.devices[0].hardware, budget_s=0.5,
                metric_name="val_loss",
            )
        )  # fmt: skip
    assert swarm.run().errors == []
    traces = store.every_trace(TraceQuery(task="quad", swarm_id=swarm.swarm_id))
    mine = [t for t in traces if t.hypothesis == "LR far too high"]
    shorts = [t for t in mine if t.role == Role.short]
    assert len(shorts) == 1 and shorts[0].status == Status.discard, "ran once, not promoted"
    refused = [t for t in mine if t.status == Status.duplicate]
    assert len(refused) == 1 and refused[0].fingerprint == shorts[0].fingerprint
    assert f"already ran as trace {shorts[0].id} (short run at 0.5 s: discard" in refused[0].error
    assert not [t for t in mine if t.budget_s == 1.0 and t.status in RAN_STATUSES]
    # the rule itself: only a short run at the swarm's short budget that ended there
    seen = store.seen
    fp, hw = shorts[0].fingerprint, shorts[0].hardware
    assert seen("quad", fp, hardware=hw, budget=1.0) is None  # no full run of it
    assert seen("quad", fp, hardware=hw, budget=1.0, short_budget=0.5).id == shorts[0].id
    assert seen("quad", fp, hardware=hw, budget=1.0, short_budget=0.25) is None
    promoted = store.add_trace(
        ExperimentCreate(
            task="quad", fingerprint="promoted", status=Status.keep, metric=0.0,
            role=Role.short, hardware=hw, budget_s=0.5, metric_name="val_loss",
        )
    )  # fmt: skip
    # a promoted short run leaves the verdict to its full run
    assert seen("quad", promoted.fingerprint, budget=1.0, short_budget=0.5) is None


def test_a_short_run_recorded_between_the_check_and_the_claim_refuses_the_program(
    tmp_path, store, monkeypatch
):
    """The race the claim alone leaves open: the check saw nothing, then another agent's
    short run of the same program was recorded (and its claim released) before this
    agent's claim. The check after the claim sees it: refused, the claim released, no
    device spent."""
    task_dir = make_task(tmp_path / "t")
    worse = edit_proposal("LR far too high", "LR = 0.1  #", "LR = 30.0  #")
    config = SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"),
        agents=1, max_experiments=2, short_budget=0.5,
    )  # fmt: skip
    swarm = Swarm(config, store, proposer_factory=fixed_factory({"agent-0": [worse]}))
    claim = store.claim
    raced: list[str] = []

    def other_agent_first(request):
        if request.hypothesis == "LR far too high" and not raced:
            other = store.add_trace(
                ExperimentCreate(
                    task="quad", fingerprint=request.fingerprint, status=Status.discard,
                    metric=9.0, role=Role.short, hardware=request.hardware, budget_s=0.5,
                    metric_name="val_loss", agent_id="elsewhere/agent-9",
                )
            )  # fmt: skip
            raced.append(other.id)
        return claim(request)

    monkeypatch.setattr(store, "claim", other_agent_first)
    assert swarm.run().errors == []
    assert raced, "the agent claimed the program"
    mine = store.every_trace(TraceQuery(task="quad", swarm_id=swarm.swarm_id))
    refused = [t for t in mine if t.hypothesis == "LR far too high"]
    assert [t.status for t in refused] == [Status.duplicate]
    assert f"already ran as trace {raced[0]} (short run at 0.5 s: discard" in refused[0].error
    assert not [t for t in mine if t.role == Role.short], "no short run of its own"
    assert store.active_claims("quad") == []
