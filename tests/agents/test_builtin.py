"""The builtin proposer: Optuna TPE over the knob space, warm-started from real memory."""

from __future__ import annotations

from pathlib import Path

import pytest
from optuna.trial import TrialState

from agents.devices import cpu_devices
from agents.knobs import set_knobs
from agents.program import Program, apply_edits
from agents.proposers.base import ProposalRequest, SearchExhausted
from agents.proposers.builtin import BuiltinProposer, distribution_for, tunable_knobs
from agents.task import load_task
from memory.models import ClaimCreate, ExperimentCreate, Role, Status
from tests.agents.conftest import make_task

DEV = cpu_devices(1, threads=1)[0]

MODES = """\
MODE = "a"  # choices: a | b | c
print("---")
print("val_loss:", {"a": 1.0, "b": 2.0, "c": 0.5}[MODE])
"""


def _record(store, task, program, status, metric=None, parent=None, knobs=None, role=None):
    return store.add_trace(
        ExperimentCreate(
            task=task.name,
            fingerprint=program.fingerprint,
            status=status,
            metric=metric,
            parent_id=parent,
            knobs=knobs or {},
            hardware=DEV.hardware,
            role=role or Role.experiment,
            metric_name="val_loss",
        )
    )


def _request(task, store, base):
    return ProposalRequest(
        task=task,
        agent_id="s/agent-0",
        device=DEV,
        store=store,
        base=base,
        base_trace=None,
        base_metric=None,
        champion=None,
    )


def test_space_per_knob_kind(tmp_path):
    task = load_task(make_task(tmp_path / "q"))
    root = Program.read(task.root, task.editable)
    dists = {k.name: distribution_for(k) for k in tunable_knobs(task, root, "cpu")}
    assert dists["LR"].log and dists["LR"].low == pytest.approx(0.025)
    assert dists["LR"].high == pytest.approx(0.4)
    assert dists["WIDTH"].choices == (4, 8, 16, 32, 64)
    assert dists["WARMUP"].low == 0.0 and not dists["WARMUP"].log
    assert dists["USE_BIAS"].choices == (False, True)
    assert dists["MODE"].choices == ("a", "b", "c")


def test_cpu_and_gpu_variants_of_a_knob_are_picked_by_device():
    task = load_task(None)
    root = Program.read(task.root, task.editable)
    cpu = {k.name for k in tunable_knobs(task, root, "cpu")}
    gpu = {k.name for k in tunable_knobs(task, root, "cuda")}
    assert "DEPTH_CPU" in cpu and "DEPTH_CUDA" not in cpu
    assert "DEPTH_CUDA" in gpu and "DEPTH_CPU" not in gpu


def test_edit_rewrites_only_the_changed_constants_lines(tmp_path, store):
    task = load_task(make_task(tmp_path / "q"))
    root = Program.read(task.root, task.editable)
    _record(store, task, root, Status.keep, 1.3, role=Role.baseline)
    prop = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=3)
    proposal = prop.propose(_request(task, store, root))
    new = apply_edits(root, proposal.edits)
    before = root.get("train.py").splitlines()
    after = new.get("train.py").splitlines()
    changed = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
    assert 1 <= len(changed) <= 3
    assert all(before[i].split("=")[0] == after[i].split("=")[0] for i in changed)
    assert "->" in proposal.hypothesis and "TPE" in proposal.hypothesis


def test_warm_start_from_every_trace_crashes_failed_claims_pending(tmp_path, store):
    task = load_task(make_task(tmp_path / "q"))
    root = Program.read(task.root, task.editable)
    base = _record(store, task, root, Status.keep, 1.3, role=Role.baseline)
    p1 = set_knobs(root, {"LR": 0.2})
    _record(store, task, p1, Status.keep, 0.5, base.id, {"LR": [0.1, 0.2]})
    p2 = set_knobs(root, {"WIDTH": 64})
    _record(store, task, p2, Status.crash, None, base.id, {"WIDTH": [16, 64]})
    p3 = set_knobs(root, {"LR": 0.05})
    store.claim(
        ClaimCreate(
            task=task.name, fingerprint=p3.fingerprint, parent_id=base.id, knobs={"LR": [0.1, 0.05]}
        )
    )
    prop = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=0)
    prop.sync(store)
    trials = prop.study.get_trials(deepcopy=False)
    states = sorted(t.state.name for t in trials)
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "RUNNING"]
    complete = {t.params["LR"]: t.value for t in trials if t.state == TrialState.COMPLETE}
    assert complete == {0.1: 1.3, 0.2: 0.5}
    failed = next(t for t in trials if t.state == TrialState.FAIL)
    assert failed.params["WIDTH"] == 64
    running = next(t for t in trials if t.state == TrialState.RUNNING)
    assert running.params["LR"] == 0.05


def test_never_reproposes_a_recorded_failure_or_a_claimed_program(tmp_path, store):
    task = load_task(make_task(tmp_path / "m", MODES, name="modes"))
    root = Program.read(task.root, task.editable)
    base = _record(store, task, root, Status.keep, 1.0, role=Role.baseline)
    prog_b = set_knobs(root, {"MODE": "b"})
    prog_c = set_knobs(root, {"MODE": "c"})
    _record(store, task, prog_b, Status.crash, None, base.id, {"MODE": ["a", "b"]})
    prop = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=1)
    for _ in range(3):  # every try: only "c" is left, the crash is never proposed again
        proposal = prop.propose(_request(task, store, root))
        assert apply_edits(root, proposal.edits).fingerprint == prog_c.fingerprint
    claim = store.claim(
        ClaimCreate(
            task=task.name,
            fingerprint=prog_c.fingerprint,
            parent_id=base.id,
            knobs={"MODE": ["a", "c"]},
        )
    )
    other = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=2)
    with pytest.raises(SearchExhausted):  # "c" is running elsewhere: nothing left
        other.propose(_request(task, store, root))
    store.release(claim.id)
    _record(store, task, prog_c, Status.discard, 0.5, base.id, {"MODE": ["a", "c"]})
    with pytest.raises(SearchExhausted):
        prop.propose(_request(task, store, root))


def test_recall_off_learns_only_from_its_own_traces(tmp_path, store):
    task = load_task(make_task(tmp_path / "q"))
    root = Program.read(task.root, task.editable)
    base = _record(store, task, root, Status.keep, 1.3, role=Role.baseline)
    theirs = set_knobs(root, {"LR": 0.2})
    store.add_trace(
        ExperimentCreate(
            task=task.name,
            agent_id="s/agent-1",
            fingerprint=theirs.fingerprint,
            status=Status.crash,
            parent_id=base.id,
            knobs={"LR": [0.1, 0.2]},
            hardware=DEV.hardware,
            metric_name="val_loss",
        )
    )
    mine = set_knobs(root, {"WIDTH": 32})
    store.add_trace(
        ExperimentCreate(
            task=task.name,
            agent_id="s/agent-0",
            fingerprint=mine.fingerprint,
            status=Status.discard,
            metric=1.4,
            parent_id=base.id,
            knobs={"WIDTH": [16, 32]},
            hardware=DEV.hardware,
            metric_name="val_loss",
        )
    )
    store.claim(ClaimCreate(task=task.name, fingerprint=set_knobs(root, {"LR": 0.05}).fingerprint))
    isolated = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=0)
    isolated.sync(store, agent_id="s/agent-0")
    states = sorted(t.state.name for t in isolated.study.get_trials(deepcopy=False))
    assert states == ["COMPLETE"]  # its own discard: no other agent's crash, no claims
    shared = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=0)
    shared.sync(store)
    states = sorted(t.state.name for t in shared.study.get_trials(deepcopy=False))
    assert states == ["COMPLETE", "COMPLETE", "FAIL", "RUNNING"]


def test_proposals_are_pinned_for_a_fixed_seed_and_memory(tmp_path, store):
    """The move to Optuna's public API (add_trial, tell, trial.number) changed no proposal:
    this sequence was recorded with the implementation that used Optuna's internals."""
    task = load_task(make_task(tmp_path / "q"))
    root = Program.read(task.root, task.editable)
    base = _record(store, task, root, Status.keep, 1.3, role=Role.baseline)
    _record(
        store, task, set_knobs(root, {"LR": 0.2}), Status.keep, 0.5, base.id, {"LR": [0.1, 0.2]}
    )
    _record(
        store,
        task,
        set_knobs(root, {"WIDTH": 64}),
        Status.crash,
        None,
        base.id,
        {"WIDTH": [16, 64]},
    )
    _record(
        store,
        task,
        set_knobs(root, {"MODE": "b"}),
        Status.discard,
        1.35,
        base.id,
        {"MODE": ["a", "b"]},
    )
    _record(
        store,
        task,
        set_knobs(root, {"WARMUP": 0.1}),
        Status.discard,
        1.4,
        base.id,
        {"WARMUP": [0.0, 0.1]},
    )
    _record(
        store,
        task,
        set_knobs(root, {"USE_BIAS": True}),
        Status.discard,
        1.29,
        base.id,
        {"USE_BIAS": [False, True]},
    )
    lr = set_knobs(root, {"LR": 0.05})
    store.claim(
        ClaimCreate(
            task=task.name, fingerprint=lr.fingerprint, parent_id=base.id, knobs={"LR": [0.1, 0.05]}
        )
    )
    prop = BuiltinProposer(task, root, "cpu", DEV.hardware, seed=7)
    got = [prop.propose(_request(task, store, root)).hypothesis for _ in range(8)]
    assert got == [
        "WARMUP 0.0 -> 0.225 (TPE over 8 trials)",
        "WIDTH 16 -> 32 (TPE over 9 trials)",
        "LR 0.1 -> 0.318 (TPE over 11 trials)",
        "LR 0.1 -> 0.294 (TPE over 12 trials)",
        'MODE "a" -> "c" (TPE over 13 trials)',
        "LR 0.1 -> 0.339 (TPE over 14 trials)",
        "WARMUP 0.0 -> 0.241 (TPE over 15 trials)",
        'MODE "a" -> "c" (TPE over 16 trials)',
    ]
    # the claimed program's trial finishes when its trace arrives (study.tell by number)
    _record(store, task, lr, Status.discard, 0.9, base.id, {"LR": [0.1, 0.05]})
    prop.sync(store)
    finished = [t for t in prop.study.get_trials(deepcopy=False) if t.params.get("LR") == 0.05]
    assert [(t.state, t.value) for t in finished] == [(TrialState.COMPLETE, 0.9)]


def test_in_distribution_uses_only_public_attributes():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    from agents.proposers.builtin import in_distribution

    assert in_distribution(FloatDistribution(0.025, 0.4, log=True), 0.1)
    assert not in_distribution(FloatDistribution(0.025, 0.4, log=True), 0.5)
    assert in_distribution(IntDistribution(10, 40, step=10), 30)
    assert not in_distribution(IntDistribution(10, 40, step=10), 35)
    assert in_distribution(CategoricalDistribution([4, 8, 16]), 8)
    assert not in_distribution(CategoricalDistribution([False, True]), 1)  # a bool knob
    assert not in_distribution(CategoricalDistribution(["a", "b"]), None)
    source = (Path(__file__).resolve().parents[2] / "agents/proposers/builtin.py").read_text()
    for private in ("._storage", "._study_id", "._trial_id", "._contains"):
        assert private not in source
