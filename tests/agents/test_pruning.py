"""Pruning with shared memory: duplicates refused before the run, claims spread agents."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from agents.judge import DEFAULT_REPLICATES
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


def _experiment_logs(swarm: Swarm) -> list[Path]:
    logs = (swarm.directory / "agents").glob("*/logs/*.log")
    return sorted(p for p in logs if not p.name.startswith("baseline-"))


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
        TraceQuery(
            task="quad",
            agent_id=f"{b.swarm_id}/agent-0",
            role=[Role.experiment],
            sort="created_at",
        )
    ).data
    dup, new = b_traces
    assert dup.status == Status.duplicate and dup.fingerprint == ran_by_a[0].fingerprint
    assert ran_by_a[0].id in dup.error and dup.duration_s is None
    assert new.status in RAN_STATUSES
    # B spent no device on the duplicate: the new program's logs only (its run, and its
    # confirmation and re-measure runs when it was a candidate)
    retests = store.query_traces(
        TraceQuery(task="quad", swarm_id=b.swarm_id, role=[Role.confirmation, Role.remeasure])
    ).data
    assert all(t.parent_id == new.id for t in retests)
    assert sorted(p.stem for p in _experiment_logs(b)) == sorted([new.id] + [t.id for t in retests])
    # ... and measured its own noise: another swarm's baselines are not its own
    b_baselines = store.query_traces(
        TraceQuery(task="quad", swarm_id=b.swarm_id, role=[Role.baseline])
    ).data
    assert len(b_baselines) == DEFAULT_REPLICATES
    assert all(t.status == Status.keep for t in b_baselines)


class AfterClaim(FixedProposer):
    """Proposes like FixedProposer, once another agent holds a claim (polls memory)."""

    def propose(self, request):
        deadline = time.monotonic() + 120
        while not request.store.active_claims(request.task.name):
            assert time.monotonic() < deadline, "the other agent never claimed"
            time.sleep(0.02)
        return super().propose(request)


def test_claims_keep_two_agents_from_running_the_same_program_at_once(tmp_path, store):
    # agent-0's run waits for a flag file (in its workspace, which a sandboxed run sees)
    # that the test writes once agent-1 was refused, and agent-1 proposes only once agent-0
    # holds its claim: no thread timing decides the order
    task_dir = make_task(tmp_path / "quad")
    wait = 'while not os.path.exists("go.flag"): time.sleep(0.02)'
    same = edit_proposal("slow same", SLEEP, wait)
    made = {}

    def factory(task, root, device, name, seed):
        cls = FixedProposer if name == "agent-0" else AfterClaim
        made[name] = cls([same.model_copy(deep=True)])
        return made[name]

    swarm = _swarm(tmp_path, store, task_dir, factory, agents=2)
    flag = swarm.directory / "agents" / "agent-0" / "work" / "go.flag"
    runner = threading.Thread(target=swarm.run)
    runner.start()
    try:
        deadline = time.monotonic() + 120
        query = TraceQuery(task="quad", status=[Status.duplicate])
        while not store.query_traces(query).data:
            assert runner.is_alive() and time.monotonic() < deadline, "agent-1 never refused"
            time.sleep(0.05)
    finally:
        flag.write_text("go")
        runner.join()
    traces = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id)).data
    slow = [t for t in traces if t.hypothesis == "slow same"]
    ran = [t for t in slow if t.status in RAN_STATUSES]
    refused = [t for t in slow if t.status == Status.duplicate]
    assert len(ran) == 1 and len(refused) == 1
    assert ran[0].status in (Status.keep, Status.discard), "the flag let the run finish"
    assert ran[0].agent_id.endswith("agent-0") and refused[0].agent_id.endswith("agent-1")
    assert "claim" in refused[0].error.lower() and refused[0].duration_s is None
    assert store.active_claims("quad") == []
