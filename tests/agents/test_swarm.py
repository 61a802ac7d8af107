"""The swarm's own duties: setup before the first run, the task root checked before each
run, every agent ``stopped`` in memory when the swarm ends."""

from __future__ import annotations

import pytest

from agents.judge import DEFAULT_REMEASURE, DEFAULT_REPLICATES
from agents.proposers.base import Proposer
from agents.swarm import Swarm, SwarmConfig, SwarmError
from agents.task import TaskError
from memory.models import Role, Status, TraceQuery
from tests.agents.conftest import edit_proposal, fixed_factory, make_task

SETUP_OK = "setup = \"{python} -c \\\"open('ready.txt', 'w').write('ok')\\\"\"\n"
SETUP_FAILS = 'setup = "{python} -c \\"import sys; print(\'no data here\'); sys.exit(3)\\""\n'
LR_UP = ("LR = 0.1  # step size", "LR = 0.3  # step size")


def _config(tmp_path, task_dir, **kw) -> SwarmConfig:
    return SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"), **kw
    )


def test_setup_runs_once_per_workspace_before_the_first_run(tmp_path, store):
    train = (
        "LR = 0.1  # step size\n"
        'assert open("ready.txt").read() == "ok", "needs the setup"\n'
        'print("---")\nprint(f"val_loss: {LR}")\n'
    )
    task_dir = make_task(tmp_path / "t", train, extra=SETUP_OK, noise_min=0.01)
    factory = fixed_factory({"agent-1": [edit_proposal("LR up", *LR_UP)]})
    swarm = Swarm(
        _config(tmp_path, task_dir, agents=2, max_experiments=1), store, proposer_factory=factory
    )
    result = swarm.run()
    assert result.errors == []
    baselines = store.query_traces(TraceQuery(task="quad", role=[Role.baseline])).data
    assert len(baselines) == DEFAULT_REPLICATES
    assert all(t.status == Status.keep for t in baselines)
    (run,) = store.query_traces(TraceQuery(task="quad", role=[Role.experiment])).data
    assert run.status == Status.discard and run.agent_id.endswith("agent-1")
    for name in swarm.names:
        log = swarm.directory / "agents" / name / "logs" / "setup.log"
        assert log.exists(), f"{name} ran the setup"


def test_a_failing_setup_stops_the_agent_names_the_log_and_is_recorded(tmp_path, store):
    task_dir = make_task(tmp_path / "t", extra=SETUP_FAILS)
    swarm = Swarm(_config(tmp_path, task_dir, agents=1, max_experiments=1), store)
    with pytest.raises(SwarmError) as err:
        swarm.run()
    log = swarm.directory / "agents" / "agent-0" / "logs" / "setup.log"
    assert str(log) in str(err.value) and "exit code 3" in str(err.value)
    assert "no data here" in log.read_text()
    (trace,) = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id)).data
    assert trace.status == Status.crash and trace.fingerprint.startswith("setup-")
    assert "no data here" in trace.log_tail and "agents/agent-0/logs/setup.log" in trace.error
    assert not trace.resources["log"].startswith("/"), "no absolute path in memory"
    # the program itself is not marked as seen: it never ran
    assert store.seen("quad", swarm.root.fingerprint) is None
    (agent,) = store.list_agents(swarm.swarm_id)
    assert agent.status == "stopped"


def test_a_changed_task_root_stops_the_swarm_with_a_clear_error(tmp_path, store):
    task_dir = make_task(tmp_path / "t")

    class TamperingProposer(Proposer):
        """Changes the original task's protected file, then proposes a normal edit."""

        name = "tamper"

        def __init__(self):
            self.done = False

        def propose(self, request):
            (task_dir / "prepare.py").write_text("VALUE = 2\n")
            return edit_proposal("LR up", *LR_UP)

        def close(self):
            pass

    swarm = Swarm(
        _config(tmp_path, task_dir, agents=1, max_experiments=2),
        store,
        proposer_factory=lambda *a: TamperingProposer(),
    )
    with pytest.raises(SwarmError, match=r"prepare\.py"):
        swarm.run()
    experiments = store.query_traces(TraceQuery(task="quad", role=[Role.experiment])).data
    assert experiments == [], "nothing ran on the changed task"
    assert store.active_claims("quad") == []
    (agent,) = store.list_agents(swarm.swarm_id)
    assert agent.status == "stopped"
    assert store.list_swarms("quad")[0].status == "stopped"


def test_a_resume_refused_for_a_changed_task_root_says_what_to_do_instead(tmp_path, store):
    """An upgrade of labswarm changes the built-in task's task.toml: the stopped swarm
    cannot resume on it, and the error says how a new swarm goes on (memory's champion)."""
    task_dir = make_task(tmp_path / "t")
    factory = fixed_factory({"agent-0": [edit_proposal("LR up", *LR_UP)]})
    first = Swarm(
        _config(tmp_path, task_dir, agents=1, max_experiments=1), store, proposer_factory=factory
    )
    first.run()
    champion = store.champion("quad")
    assert champion is not None
    before = store.query_traces(TraceQuery(task="quad", limit=100)).count
    with (task_dir / "task.toml").open("a", encoding="utf-8") as fh:
        fh.write("# upgraded\n")
    again = Swarm(
        _config(tmp_path, task_dir, agents=1, max_experiments=3), store, resume=first.swarm_id
    )
    with pytest.raises(SwarmError) as exc:
        again.run()
    message = str(exc.value)
    assert "changed since the swarm started: task.toml" in message
    assert f"A new swarm on this memory goes on from {first.swarm_id}'s traces" in message
    assert f"`labswarm run --start-from {champion.id}` builds on memory's champion" in message
    assert store.query_traces(TraceQuery(task="quad", limit=100)).count == before, "nothing ran"


def test_every_agent_is_stopped_in_memory_when_the_swarm_ends(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    factory = fixed_factory({"agent-0": [edit_proposal("LR up", *LR_UP)]})
    swarm = Swarm(_config(tmp_path, task_dir, agents=2), store, proposer_factory=factory)
    result = swarm.run()
    assert "search exhausted" in result.stop_reasons["agent-1"]
    agents = store.list_agents(swarm.swarm_id)
    assert [a.status for a in agents] == ["stopped", "stopped"]
    # agent-0's keep: its run, the confirmation and the re-measures
    runs = 2 + DEFAULT_REMEASURE
    assert {a.name: a.experiments for a in agents} == {"agent-0": runs, "agent-1": 0}


def test_the_search_space_is_recorded_with_the_swarm_and_checked_before_any_run(tmp_path, store):
    space = "[space.LR]\nlow = 0.01\nhigh = 1.0\nlog = true\n"
    task_dir = make_task(tmp_path / "t", extra=space)
    swarm = Swarm(_config(tmp_path, task_dir, agents=1, max_experiments=1), store)
    swarm.run()
    (row,) = store.list_swarms("quad")
    recorded = row.config["space"]
    assert recorded["LR"] == {"low": 0.01, "high": 1.0, "log": True, "step": None}
    assert recorded["WIDTH"] == {"choices": [4, 8, 16, 32, 64]}  # undeclared: the default box
    assert recorded["MODE"] == {"choices": ["a", "b", "c"]}

    bad = make_task(tmp_path / "bad", extra="[space.DEPTH]\nlow = 1\nhigh = 4\n", name="bad")
    with pytest.raises(TaskError, match="field 'space.DEPTH': not a knob of train.py"):
        Swarm(_config(tmp_path, bad, agents=1, max_experiments=1), store)
    assert store.list_swarms("bad") == [] and store.query_traces(TraceQuery(task="bad")).data == []


def test_too_few_replicates_are_refused(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    with pytest.raises(SwarmError, match="at least 2 runs"):
        Swarm(_config(tmp_path, task_dir, agents=1, replicates=1), store)


def test_a_run_that_prints_nul_bytes_and_nan_is_still_recorded(tmp_path, store):
    # memory refuses NUL bytes and non-finite numbers at its edge; what a program prints is
    # made storable when the trace is written, so the run is recorded, not the agent lost
    train = (
        "import sys\nLR = 0.1  # step size\n"
        'sys.stdout.write("binary junk: \\x00\\x00 done\\n")\n'
        'print("---")\nprint(f"val_loss: {LR}")\nprint("grad_norm: nan")\n'
    )
    task_dir = make_task(tmp_path / "t", train, noise_min=0.01)
    factory = fixed_factory({"agent-0": [edit_proposal("LR up", *LR_UP)]})
    swarm = Swarm(
        _config(tmp_path, task_dir, agents=1, max_experiments=1), store, proposer_factory=factory
    )
    result = swarm.run()
    assert result.errors == []
    (run,) = store.query_traces(TraceQuery(task="quad", role=[Role.experiment])).data
    assert run.status in (Status.keep, Status.discard) and run.metric == 0.3
    assert "binary junk:  done" in run.log_tail and "\x00" not in run.log_tail
    assert run.resources["grad_norm"] == "nan"
