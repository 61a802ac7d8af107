"""Trusted judging in a real swarm: seeds and noise, what "already ran" means, stale failures."""

from __future__ import annotations

import pytest

from agents.judge import Noise
from agents.nodes import near_failure, stale_failures
from agents.program import Program, apply_edits
from agents.proposers.base import ProposalRequest
from agents.proposers.prompts import user_prompt
from agents.state import Recalled
from agents.swarm import Swarm, SwarmConfig, SwarmError
from memory.models import ExperimentCreate, ExperimentPublic, Role, RunStats, Status, TraceQuery
from tests.agents.conftest import edit_proposal, fixed_factory, make_task

LR_UP = ("LR = 0.1  # step size", "LR = 0.3  # step size")
# A program with no randomness at all: every run prints the same metric.
CONSTANT = 'LR = 0.1  # step size\nprint("---")\nprint(f"val_loss: {(LR - 0.3) ** 2}")\n'


def _config(tmp_path, task_dir, **kw) -> SwarmConfig:
    return SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"), **kw
    )


def test_a_program_that_ignores_its_seed_is_refused_with_the_reason(tmp_path, store):
    task_dir = make_task(tmp_path / "t", CONSTANT)
    factory = fixed_factory({"agent-0": [edit_proposal("LR up", *LR_UP)]})
    swarm = Swarm(
        _config(tmp_path, task_dir, agents=1, max_experiments=3), store, proposer_factory=factory
    )
    with pytest.raises(SwarmError, match="ignores LABSWARM_SEED") as err:
        swarm.run()
    assert "[noise] min" in str(err.value)
    replicates = store.query_traces(TraceQuery(task="quad", role=[Role.baseline])).data
    assert len(replicates) == 3 and len({t.metric for t in replicates}) == 1
    assert len({t.seed for t in replicates}) == 3, "each replicate got its own seed"
    assert store.count(TraceQuery(task="quad", role=[Role.experiment])) == 0


def test_with_a_declared_noise_floor_the_same_program_is_judged(tmp_path, store):
    task_dir = make_task(tmp_path / "t", CONSTANT, extra="[noise]\nmin = 0.001\n")
    factory = fixed_factory({"agent-0": [edit_proposal("LR up", *LR_UP)]})
    # re-tests as each keep happens: the candidate is confirmed (judged on two runs)
    config = _config(tmp_path, task_dir, agents=1, max_experiments=3, retest="each")
    swarm = Swarm(config, store, proposer_factory=factory)
    swarm.run()
    run = store.query_traces(TraceQuery(task="quad", role=[Role.experiment])).data[0]
    assert run.status == Status.keep and run.noise_sd == 0.001 and run.judged_n == 2
    assert run.base_n == 3 and run.base_metric == pytest.approx(0.04)


def _candidate(task_dir) -> Program:
    from agents.task import load_task

    task = load_task(task_dir)
    root = Program.read(task.root, task.editable)
    return apply_edits(root, edit_proposal("LR up", *LR_UP).edits)


def _ran_elsewhere(store, program: Program, status: Status, hardware: str, budget: float):
    store.add_trace(
        ExperimentCreate(
            task="quad",
            swarm_id="another-swarm",
            fingerprint=program.fingerprint,
            status=status,
            metric=0.5 if status == Status.discard else None,
            hardware=hardware,
            budget_s=budget,
            metric_name="val_loss",
        )
    )


@pytest.mark.parametrize(
    ("status", "hardware", "budget", "refused"),
    [
        (Status.discard, "1xH100", 1.0, False),  # another hardware class
        (Status.discard, None, 5.0, False),  # another budget
        (Status.timeout, None, 1.0, False),  # a timeout may run again
        (Status.discard, None, 1.0, True),  # the same program here: a duplicate
    ],
)
def test_already_ran_means_on_this_hardware_class_and_budget(
    tmp_path, store, status, hardware, budget, refused
):
    task_dir = make_task(tmp_path / "t")
    factory = fixed_factory({"agent-0": [edit_proposal("LR up", *LR_UP)]})
    swarm = Swarm(
        _config(tmp_path, task_dir, agents=1, max_experiments=1), store, proposer_factory=factory
    )
    here = swarm.devices[0].hardware
    _ran_elsewhere(store, _candidate(task_dir), status, hardware or here, budget)
    swarm.run()
    mine = store.query_traces(
        TraceQuery(task="quad", swarm_id=swarm.swarm_id, role=[Role.experiment])
    ).data
    assert len(mine) == 1
    if refused:
        assert mine[0].status == Status.duplicate and "already ran" in mine[0].error
    else:
        assert mine[0].status in (Status.keep, Status.discard) and mine[0].duration_s


def test_a_failure_on_an_older_base_is_stale_shown_so_and_not_blocking(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    swarm = Swarm(_config(tmp_path, task_dir, agents=1, max_experiments=0), store)
    swarm.run()  # measures the noise; no experiment
    hardware = swarm.devices[0].hardware
    root = store.get_trace(swarm.baseline_id)
    base = store.program_stats("quad", root.fingerprint, hardware, 1, swarm_id=swarm.swarm_id)
    crash = store.add_trace(
        ExperimentCreate(
            task="quad",
            swarm_id=swarm.swarm_id,
            agent_id=f"{swarm.swarm_id}/agent-0",
            parent_id=root.id,
            fingerprint="crashed-program",
            status=Status.crash,
            knobs={"LR": [0.1, 9.0]},
            error="exit code 1: diverged",
            hardware=hardware,
            budget_s=1,
            base_metric=base.mean,
            base_n=base.n,
            metric_name="val_loss",
        )
    )

    class Ctx:  # what stale_failures reads of an agent's context
        def __init__(self) -> None:
            self.store, self.task, self.swarm_id, self.budget = store, swarm.task, swarm.swarm_id, 1
            self.device = swarm.devices[0]

    noise = Noise(sd=0.001, n=3, df=2)
    same = stale_failures(Ctx(), [crash], base, noise)  # type: ignore[arg-type]
    assert same == [], "the champion has not moved: the failure still holds"
    assert base.mean is not None
    moved = RunStats(mean=base.mean - 1.0, n=3, sd=None)
    assert stale_failures(Ctx(), [crash], moved, noise) == [crash.id]  # type: ignore[arg-type]

    # a program discarded at its first run, then crowned by the finals and built on: the
    # champion's own program and its ancestors' are never stale (the rule insights use)
    def run(fingerprint: str, parent: str, status: Status) -> ExperimentPublic:
        return store.add_trace(
            ExperimentCreate(
                task="quad",
                swarm_id=swarm.swarm_id,
                agent_id=f"{swarm.swarm_id}/agent-0",
                parent_id=parent,
                fingerprint=fingerprint,
                status=status,
                hardware=hardware,
                budget_s=1,
                base_metric=base.mean,
                base_n=base.n,
                metric=base.mean,
                metric_name="val_loss",
            )
        )

    crowned = run("crowned-program", root.id, Status.discard)
    child = run("child-program", crowned.id, Status.keep)
    both = [crash, crowned]
    assert stale_failures(Ctx(), both, moved, noise) == [crash.id, crowned.id]  # type: ignore[arg-type]
    for champion in (crowned, child):
        found = stale_failures(Ctx(), both, moved, noise, champion_id=champion.id)  # type: ignore[arg-type]
        assert found == [crash.id], champion.fingerprint

    state = {"base_id": root.id, "recalled": Recalled(base=root, related=[crash])}
    assert near_failure(state, {"LR": (0.1, 9.0)}), "a fresh failure blocks the same change"
    state["recalled"] = Recalled(base=root, related=[crash], stale=[crash.id])
    assert not near_failure(state, {"LR": (0.1, 9.0)}), "a stale one does not"

    request = ProposalRequest(
        task=swarm.task,
        agent_id="a",
        device=swarm.devices[0],
        store=store,
        base=swarm.root,
        base_trace=root,
        base_metric=base.mean,
        champion=None,
        related=[crash],
        stale=[crash.id],
    )
    assert "crash on an older base (the champion has moved since)" in user_prompt(request)
