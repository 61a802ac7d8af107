"""The nodes of one agent's iteration (agents.nodes), driven by hand: what they read."""

from __future__ import annotations

from langgraph.runtime import Runtime

from agents.execute import Outcome
from agents.judge import noise_used
from agents.nodes import judge_node, recall
from agents.runner import RunResult
from agents.state import checkpoint_serde
from memory.models import ExperimentCreate, Role, Status, TraceQuery, utcnow
from tests.agents.test_graph import _context


def test_an_iteration_reads_the_measured_runs_once(tmp_path, store, monkeypatch):
    ctx = _context(tmp_path, store, [])
    hardware = ctx.device.hardware
    baseline = store.query_traces(TraceQuery(task="quad", role=[Role.baseline])).data[0]
    # a failure on the baseline that recorded no base mean: its parent's stats are looked up
    crash = store.add_trace(
        ExperimentCreate(
            task="quad",
            swarm_id=ctx.swarm_id,
            parent_id=baseline.id,
            fingerprint="crashed-program",
            status=Status.crash,
            hardware=hardware,
            budget_s=1,
            metric_name="val_loss",
        )
    )
    expected = noise_used(store.noise("quad", hardware, 1, swarm_id=ctx.swarm_id), None)
    reads: list[str] = []
    evidence = store.evidence

    def counted(*args, **kwargs):
        reads.append(args[0])
        return evidence(*args, **kwargs)

    monkeypatch.setattr(store, "evidence", counted)
    runtime = Runtime(context=ctx)
    state = {"base_id": baseline.id}
    state.update(recall(state, runtime))
    assert reads == ["quad"], "recall reads the measured runs once"
    assert state["noise"] == expected and expected is not None
    assert crash.id in [t.id for t in state["recalled"].related]
    kind, data = checkpoint_serde().dumps_typed(state["noise"])
    assert checkpoint_serde().loads_typed((kind, data)) == expected, "checkpointable"

    metric = state["base_metric"] - 0.5 * expected.sd  # inside the screen: a discard
    state["outcome"] = Outcome(
        result=RunResult(status="ok", returncode=0, metric=metric),
        started_at=utcnow(),
        finished_at=utcnow(),
    )
    verdict = judge_node(state, runtime)
    assert reads == ["quad"], "judge uses the noise recall read"
    assert verdict["status"] == Status.discard.value and not verdict["pending"]
    assert verdict["judged"]["noise_sd"] == expected.sd
    assert verdict["judged"]["noise_n"] == expected.n
    # a checkpoint from before recall kept the noise (no "noise" key): judge measures it
    del state["noise"]
    again = judge_node(state, runtime)
    assert reads == ["quad", "quad"]
    assert again["judged"]["noise_sd"] == expected.sd and again["status"] == verdict["status"]
