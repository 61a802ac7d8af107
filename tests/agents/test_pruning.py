"""Pruning with shared memory: duplicates refused before the run, claims spread agents."""

from __future__ import annotations

import time
from pathlib import Path

from agents.swarm import Swarm, SwarmConfig
from memory.models import RAN_STATUSES, Role, Status, TraceQuery
from tests.agents.conftest import FixedProposer, edit_proposal, fixed_factory, make_task

LR_WORSE = ("LR = 0.1  # step size", "LR = 0.01  # step size")
SLEEP = "time.sleep(min(budget, 0.2))"


def _swarm(tmp_path: Path, store, task_dir: Path, factory, agents: int = 1) -> Swarm:
    config = SwarmConfig(
        task=str(task_dir), agents=agents, devices="cpu", budget=1, runs_dir=str(tmp_path / "runs")
    )
    return Swarm(config, store, proposer_factory=factory)


def _logs(swarm: Swarm) -> list[Path]:
    return sorted((swarm.directory / "agents").glob("*/logs/*.log"))


def test_agent_b_never_runs_a_program_agent_a_already_ran(tmp_path, store):
    task_dir = make_task(tmp_path / "quad")
    a = _swarm(
        tmp_path, store, task_dir, fixed_factory({"agent-0": [edit_proposal("A", *LR_WORSE)]})
    )
    a.run()
    ran_by_a = store.query_traces(
        TraceQuery(task="quad", agent_id=f"{a.swarm_id}/agent-0", role=[Role.experiment])
    ).data
    assert [t.status for t in ran_by_a] == [Status.discard]

    # another swarm over the same memory: agent B proposes the same program, then another
    b_props = [
        edit_proposal("B same program, other words", *LR_WORSE),
        edit_proposal("B new", "USE_BIAS = False", "USE_BIAS = True"),
    ]
    b = _swarm(tmp_path, store, task_dir, fixed_factory({"agent-0": b_props}))
    b.run()
    b_traces = store.query_traces(
        TraceQuery(task="quad", agent_id=f"{b.swarm_id}/agent-0", sort="created_at")
    ).data
    dup, new = b_traces
    assert dup.status == Status.duplicate and dup.fingerprint == ran_by_a[0].fingerprint
    assert ran_by_a[0].id in dup.error and dup.duration_s is None
    assert new.status in RAN_STATUSES
    # B spent no device on the duplicate: one run log (the new program), baselines reused
    assert [p.stem for p in _logs(b)] == [new.id]


class SlowStart(FixedProposer):
    """Proposes like FixedProposer, a little after the other agent."""

    def propose(self, request):
        time.sleep(0.5)
        return super().propose(request)


def test_claims_keep_two_agents_from_running_the_same_program_at_once(tmp_path, store):
    task_dir = make_task(tmp_path / "quad")
    same = edit_proposal("slow same", SLEEP, "time.sleep(3)")
    made = {}

    def factory(task, root, device, name, seed):
        cls = FixedProposer if name == "agent-0" else SlowStart
        made[name] = cls([same.model_copy(deep=True)])
        return made[name]

    swarm = _swarm(tmp_path, store, task_dir, factory, agents=2)
    swarm.run()
    traces = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id)).data
    slow = [t for t in traces if t.hypothesis == "slow same"]
    ran = [t for t in slow if t.status in RAN_STATUSES]
    refused = [t for t in slow if t.status == Status.duplicate]
    assert len(ran) == 1 and len(refused) == 1
    assert ran[0].agent_id.endswith("agent-0") and refused[0].agent_id.endswith("agent-1")
    assert "claim" in refused[0].error.lower() and refused[0].duration_s is None
    assert store.active_claims("quad") == []
