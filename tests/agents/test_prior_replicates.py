"""Prior replicates: before its agents start, a swarm runs the best configurations that
memory holds from elsewhere (here: a seed pack's run) like its root, twice each, so the
champion rule can weigh them against the start at once."""

from __future__ import annotations

from agents.knobs import set_knobs
from agents.program import Program
from agents.swarm import Swarm, SwarmConfig
from agents.task import load_task
from memory import get_store
from memory.models import ExperimentCreate, Role, Status, TraceQuery
from tests.agents.conftest import make_task


def _seed_a_pack_run(store, task_dir) -> str:
    """A seed pack's claim in memory: LR 0.3, the quad bowl's optimum (its fingerprint)."""
    task = load_task(task_dir)
    root = Program.read(task.root, task.editable)
    packed = set_knobs(root, {"LR": 0.3})
    store.add_trace(
        ExperimentCreate(
            task=task.name, fingerprint=packed.fingerprint, status=Status.keep, metric=0.1,
            knobs={"LR": [0.1, 0.3]}, role=Role.seed, metric_name="val_loss", budget_s=1.0,
            source="pack earlier.jsonl",
        )
    )  # fmt: skip
    return packed.fingerprint


def _swarm(tmp_path, store, task_dir, **kw) -> Swarm:
    config = SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"),
        agents=2, max_experiments=1, **kw,
    )  # fmt: skip
    return Swarm(config, store)


def test_a_prior_is_run_twice_before_the_agents_and_can_be_the_champion_at_once(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    packed = _seed_a_pack_run(store, task_dir)
    swarm = _swarm(tmp_path, store, task_dir)
    result = swarm.run()
    assert result.errors == []
    mine = store.query_traces(
        TraceQuery(task="quad", swarm_id=swarm.swarm_id, sort="created_at", limit=100)
    ).data
    roots = [t for t in mine if t.role == Role.baseline and t.parent_id is None]
    priors = [t for t in mine if t.role == Role.baseline and t.parent_id is not None]
    # two seats, two replicates each: one prior, run on both seats at once
    assert len(priors) == 2 and {t.fingerprint for t in priors} == {packed}
    assert all(t.parent_id == swarm.baseline_id and t.status == Status.keep for t in priors)
    assert swarm.baseline_id in {t.id for t in roots}
    assert {t.agent_id.rsplit("/", 1)[1] for t in priors} == {"agent-0", "agent-1"}
    assert {t.hypothesis for t in priors} == {
        f"prior replicate {n}: a seed pack, rank 1" for n in (1, 2)
    }
    assert priors[0].knobs == {"LR": [0.1, 0.3]} and "LR = 0.3" in priors[0].diff
    # ... before any agent's experiment
    first_experiment = min(t.created_at for t in mine if t.role == Role.experiment)
    assert max(t.created_at for t in priors) < first_experiment
    # the champion rule weighs its two unselected runs against the start's: it leads
    champion = store.champion("quad", priors[0].hardware, 1.0, swarm_id=swarm.swarm_id)
    assert champion is not None and champion.fingerprint == packed
    # the agents never propose it again: memory has seen it run here
    experiments = [t for t in mine if t.role == Role.experiment]
    assert experiments and all(t.fingerprint != packed for t in experiments)


def test_no_prior_replicates_when_switched_off_or_without_priors(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    packed = _seed_a_pack_run(store, task_dir)
    off = _swarm(tmp_path, store, task_dir, prior_replicates=0)
    assert off.run().errors == []
    other = get_store(tmp_path / "empty-memory", embedder="hash")
    try:
        cold = _swarm(tmp_path, other, task_dir)
        assert cold.run().errors == []
        for memory, swarm in ((store, off), (other, cold)):
            traces = memory.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id)).data
            assert [t for t in traces if t.role == Role.baseline and t.parent_id] == []
            assert [t for t in traces if t.role == Role.experiment]
        # switched off, the prior still leads the start-up phase: an agent's experiment
        ran = store.query_traces(TraceQuery(task="quad", swarm_id=off.swarm_id)).data
        assert packed in {t.fingerprint for t in ran if t.role == Role.experiment}
    finally:
        other.close()
