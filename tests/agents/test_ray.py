"""The cluster swarm on real Ray: a simulated multi-node cluster on this machine.

``ray.cluster_utils.Cluster`` starts a head node (no GPU) and three worker nodes, each a
real raylet with its own worker processes, all bound to 127.0.0.1; each worker node
declares one GPU (a count Ray schedules by: there is no GPU behind it, so each agent
detects a CPU device on its node). The agents run the landscape task (runs take
milliseconds) or a small task whose next run a test can hold (it waits while a file
``hold`` exists in its workspace), so that a run is surely in flight when a node is
removed or the driver is stopped.

What this cannot simulate: separate filesystems (the nodes share this machine's; the
agents still receive the task through the object store and keep their own directories),
real GPUs, network partitions and slow links (docs/cluster.md).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agents.cli.cluster_memory import serve_memory
from agents.cluster import ClusterConfig, ClusterSwarm, MemoryAccess, memory_access
from agents.judge import DEFAULT_REMEASURE, DEFAULT_REPLICATES
from agents.swarm import SwarmConfig
from memory import get_store
from memory.base import Store
from memory.models import RAN_STATUSES, RUN_ROLES, ExperimentPublic, Role, Status, TraceQuery
from memory.settings import Settings
from tests.agents.conftest import make_task, popen_interruptible
from tests.backends import BackendEnv, team_url, wipe

REPO = Path(__file__).resolve().parents[2]
LANDSCAPE = REPO / "benchmarks" / "landscape"
LABSWARM = Path(sys.executable).with_name("labswarm")
WORKER_NODES = 3
# Ray on this machine: no usage report, every address on loopback (Linux otherwise binds
# the machine's outward address; this variable makes Ray use 127.0.0.1 everywhere).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}

# A run of half a second, held while a file "hold" exists in its workspace: a test holds
# one agent's next run to remove its node (or stop the driver) while it is surely in flight.
SLOW_TRAIN = """\
import math
import os
import time

# ---- knobs ----
LR = 0.1  # step size
WIDTH = 16  # power of two
# ---- end knobs ----

if os.path.exists("hold"):
    print("held", flush=True)
while os.path.exists("hold"):
    time.sleep(0.05)
time.sleep(0.5)
loss = (math.log(LR) - math.log(0.3)) ** 2 + (math.log2(WIDTH) - 5) ** 2 / 10
print("---")
print(f"val_loss: {loss:.6f}")
"""


def _slow_task(tmp_path: Path) -> Path:
    """The holdable task; its metric ignores the seed, so it declares a noise floor."""
    return make_task(
        tmp_path / "slow", SLOW_TRAIN, name="slow-quad", budget=2, timeout=30, noise_min=0.01
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)  # before Ray is imported: it reads them then
    from ray.cluster_utils import Cluster

    c = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "num_gpus": 0,
            "include_dashboard": False,
            # a removed node is noticed in ~2 s rather than Ray's default ~15 s
            "_system_config": {"health_check_period_ms": 500, "health_check_failure_threshold": 4},
        },
    )
    for _ in range(WORKER_NODES):
        c.add_node(num_cpus=1, num_gpus=1)
    try:
        yield c
    finally:
        c.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _swarm(
    tmp_path: Path,
    cluster: Any,
    store: Store,
    *,
    task: Path = LANDSCAPE,
    agents: int = 2,
    experiments: int = 3,
    budget: float | None = None,
    memory: MemoryAccess | None = None,
    lost_after: float = 60.0,
) -> ClusterSwarm:
    config = SwarmConfig(
        task=str(task),
        agents=agents,
        max_experiments=experiments,
        budget=budget,
        runs_dir=str(tmp_path / "runs"),
    )
    nodes = str(tmp_path / "nodes")
    ray = ClusterConfig(address=cluster.address, node_dir=nodes, lost_after=lost_after)
    return ClusterSwarm(config, ray, store, memory=memory, serve=serve_memory)


def _traces(store: Store, swarm_id: str) -> list[ExperimentPublic]:
    return store.query_traces(TraceQuery(swarm_id=swarm_id, limit=1000)).data


def _node(device: str) -> str:
    return device.split("/")[0]


def check_runs(traces: list[ExperimentPublic], root: str) -> list[ExperimentPublic]:
    """Every trace once; no program (nor the root program ``root``) run twice as an
    experiment; every confirmation re-runs its parent's program (a re-test on purpose,
    not a duplicate). The runs: experiments, confirmations and re-measures that ran."""
    ids = [t.id for t in traces]
    assert len(ids) == len(set(ids)), "a trace arrived twice"
    ran = [t for t in traces if t.role in RUN_ROLES and t.status in RAN_STATUSES]
    fingerprints = Counter(t.fingerprint for t in ran if t.role == Role.experiment)
    twice = [fp for fp, n in fingerprints.items() if n > 1]
    assert twice == [], f"a program ran twice: {twice}"
    assert root not in fingerprints, "the root program ran as an experiment"
    by_id = {t.id: t for t in traces}
    for t in traces:
        if t.role in (Role.confirmation, Role.remeasure):
            parent = by_id.get(str(t.parent_id))
            assert parent is not None and parent.fingerprint == t.fingerprint, t.id
    return ran


def check_count(done: int, experiments: int, *, short: bool = False) -> None:
    """An agent told to stop after ``experiments`` runs ran that many, or more from its
    last iteration, which began below the count and ran to its end: a short run (with a
    short budget), the full run, its confirmation and a newly kept program's re-measures."""
    last = (3 if short else 2) + DEFAULT_REMEASURE  # the most runs one iteration adds
    assert experiments <= done <= experiments - 1 + last, (done, experiments)


def check_swarm(
    store: Store, swarm: ClusterSwarm, experiments: int, lost: tuple[str, ...] = ()
) -> list[ExperimentPublic]:
    """Every trace once, no program run twice, every claim released, the agents on
    different nodes, and what the live view and memory show agree."""
    traces = _traces(store, swarm.swarm_id)
    ran = check_runs(traces, swarm.root.fingerprint)
    assert store.active_claims(swarm.task.name) == [], "a claim was left behind"
    rows = {a.name: a for a in store.list_agents(swarm.swarm_id)}
    assert set(rows) == set(swarm.names)
    for name, row in rows.items():
        mine = [t for t in ran if t.agent_id == f"{swarm.swarm_id}/{name}"]
        assert row.status == "stopped" and row.experiments == len(mine)
        if name not in lost:
            check_count(len(mine), experiments)
        assert row.device == swarm.board[name].device, "memory and live view agree on where"
        assert all("#" in _node(t.device) for t in mine), "every trace names its node"
        # a CPU agent's device is its share of the node (Ray pins no core), not cpu[0]
        assert re.fullmatch(r"cpu:\d+|cuda:\d+", row.device.split("/")[1]), row.device
    nodes = [_node(row.device) for row in rows.values()]
    assert len(set(nodes)) == len(nodes), f"agents share a node: {nodes}"
    return traces


def test_a_swarm_over_a_team_store_spreads_agents_over_nodes(
    tmp_path: Path, cluster: Any, backend_env: BackendEnv
) -> None:
    url = team_url(backend_env)
    store = get_store(url, embedder="hash")
    wipe(store)
    try:
        access = memory_access(url, Settings(embedder="hash"))
        assert access is not None and access.target == url, "a team store is used directly"
        swarm = _swarm(tmp_path, cluster, store, memory=access)
        result = swarm.run()
        assert result.errors == []
        traces = check_swarm(store, swarm, experiments=3)
        baselines = [t for t in traces if t.role == Role.baseline]
        assert len(baselines) == DEFAULT_REPLICATES and {t.fingerprint for t in baselines} == {
            swarm.root.fingerprint
        }
        (row,) = store.list_swarms(swarm.task.name)
        assert row.status == "finished"
    finally:
        store.close()


def test_the_embedded_memory_is_served_to_the_agents_with_a_token(
    tmp_path: Path, cluster: Any
) -> None:
    from agents.view import agents_table

    store = get_store(tmp_path / "memory", embedder="hash")
    try:
        assert memory_access(str(tmp_path / "memory"), Settings()) is None
        swarm = _swarm(tmp_path, cluster, store, agents=3, experiments=2)
        result = swarm.run()
        assert result.errors == [], result.errors
        reasons = result.stop_reasons.values()
        assert all(r.startswith("finished ") for r in reasons), result.stop_reasons
        check_swarm(store, swarm, experiments=2)
        served = swarm._served
        assert served is not None and served.url.startswith("http://127.0.0.1:")
        assert len(served.token) >= 32
        table = agents_table(swarm)  # the live view's own table
        assert table.row_count == 3
        meta = json.loads((swarm.directory / "swarm.json").read_text())
        assert meta["noise"] == swarm.noise and meta["ray"]["address"] == cluster.address
    finally:
        store.close()


def _in_flight(nodes: Path, agent: str) -> bool:
    """True while an experiment (not a baseline replicate) of ``agent`` runs."""
    for home in nodes.glob(f"labswarm-cluster/*/{agent}"):
        if (home / "work" / ".labswarm-run.json").exists():
            logs = [p.name for p in (home / "logs").glob("*.log")]
            return any(not n.startswith(("baseline-", "setup")) for n in logs)
    return False


def _hold(nodes: Path, agent: str, driver: Any = None) -> Path:
    """Hold ``agent``'s next run and wait until it started (held: it cannot end); the
    hold file, to delete once the node is gone."""
    _wait(lambda: _in_flight(nodes, agent), 150, f"{agent}'s first experiment", driver)
    (home,) = nodes.glob(f"labswarm-cluster/*/{agent}")
    hold = home / "work" / "hold"
    hold.write_text("")

    def held() -> bool:  # a run that printed "held" waits until the file goes
        if not (home / "work" / ".labswarm-run.json").exists():
            return False
        for log in (home / "logs").glob("*.log"):
            text = log.read_text(errors="replace")
            if text.startswith("held") and "---" not in text:
                return True
        return False

    _wait(held, 120, f"{agent} holding an experiment", driver)
    return hold


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text(errors="replace")
    except OSError:
        return False
    return text[text.rfind(")") + 2 :].split()[:1] not in (["Z"], ["X"])


def _processes_under(root: Path) -> list[int]:
    """Pids of processes whose working directory lies under ``root``."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(proc / "cwd"))
        except OSError:
            continue
        if cwd == root or root in cwd.parents:
            found.append(int(proc.name))
    return found


def _wait(condition: Any, timeout: float, what: str, driver: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        assert driver is None or driver.poll() is None, f"the driver ended before {what}"
        time.sleep(0.05)


def test_a_node_removed_mid_run_loses_no_trace_and_the_swarm_finishes(
    tmp_path: Path, cluster: Any
) -> None:
    task = _slow_task(tmp_path)
    store = get_store(tmp_path / "memory", embedder="hash")
    try:
        swarm = _swarm(tmp_path, cluster, store, task=task, agents=2, experiments=3)
        errors: list[BaseException] = []

        def run() -> None:
            try:
                swarm.run()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        nodes = tmp_path / "nodes"
        _wait(lambda: swarm.baseline_id is not None, 120, "the noise measured")
        hold = _hold(nodes, "agent-0")
        placement = swarm._agents["agent-0"].placement
        assert placement is not None
        (victim,) = [n for n in cluster.worker_nodes if n.node_id == placement.node_id]
        cluster.remove_node(victim, allow_graceful=False)
        # release the held run only once its agent is gone: it then ends unrecorded
        _wait(lambda: not _running(placement.pid), 30, "the agent's process to end")
        hold.unlink()
        thread.join(timeout=150)
        assert not thread.is_alive() and errors == []
        result = swarm.result
        assert result is not None and result.errors == []
        traces = check_swarm(store, swarm, experiments=3)
        cut = [t for t in traces if t.status == Status.interrupted]
        assert [t.agent_id for t in cut] == [f"{swarm.swarm_id}/agent-0"], "its run is recorded"
        assert _node(swarm.board["agent-0"].device) != _node(placement.device.name), (
            "Ray restarted the agent on another node"
        )
        assert _processes_under(nodes.resolve()) == [], "a run outlived its node"
    finally:
        store.close()
        cluster.add_node(num_cpus=1, num_gpus=1)  # the next test gets its GPUs back


def test_an_agent_ray_cannot_place_again_is_given_up_and_the_others_finish(
    tmp_path: Path, cluster: Any
) -> None:
    task = _slow_task(tmp_path)
    store = get_store(tmp_path / "memory", embedder="hash")
    try:  # three agents on the three GPU nodes: no spare for the one whose node goes
        swarm = _swarm(tmp_path, cluster, store, task=task, agents=3, experiments=2, lost_after=8.0)
        thread = threading.Thread(target=swarm.run, daemon=True)
        thread.start()
        nodes = tmp_path / "nodes"
        _wait(lambda: swarm.baseline_id is not None, 120, "the noise measured")
        hold = _hold(nodes, "agent-0")
        placement = swarm._agents["agent-0"].placement
        assert placement is not None
        (victim,) = [n for n in cluster.worker_nodes if n.node_id == placement.node_id]
        cluster.remove_node(victim, allow_graceful=False)
        # release the held run only once its agent is gone: it then ends unrecorded
        _wait(lambda: not _running(placement.pid), 30, "the agent's process to end")
        hold.unlink()
        thread.join(timeout=150)
        assert not thread.is_alive()
        result = swarm.result
        assert result is not None and result.errors == []
        assert result.stop_reasons["agent-0"].startswith("lost"), result.stop_reasons
        traces = check_swarm(store, swarm, experiments=2, lost=("agent-0",))
        cut = [t for t in traces if t.status == Status.interrupted]
        assert [t.agent_id for t in cut] == [f"{swarm.swarm_id}/agent-0"], "its run is recorded"
        assert _processes_under(nodes.resolve()) == [], "a run outlived its node"
    finally:
        store.close()
        cluster.add_node(num_cpus=1, num_gpus=1)


def _driver(tmp_path: Path, cluster: Any, task: Path, *extra: str) -> subprocess.Popen[bytes]:
    argv = [str(LABSWARM), "run", "--ray", cluster.address]
    argv += ["--task", str(task), "--memory", str(tmp_path / "memory"), "--agents", "2"]
    argv += ["--ray-workdir", str(tmp_path / "nodes"), "--runs-dir", str(tmp_path / "runs")]
    argv += ["--no-live", "--budget", "2", *extra]
    env = {**os.environ, **RAY_ENV, "LABSWARM_EMBEDDER": "hash"}
    log = (tmp_path / "driver.log").open("wb")
    return popen_interruptible(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)


def test_ctrl_c_on_the_driver_stops_every_agent_and_leaves_no_run_behind(
    tmp_path: Path, cluster: Any
) -> None:
    task = _slow_task(tmp_path)
    driver = _driver(tmp_path, cluster, task, "--max-experiments", "50")
    nodes = tmp_path / "nodes"
    hold: Path | None = None
    try:
        hold = _hold(nodes, "agent-0", driver)
        driver.send_signal(signal.SIGINT)
        driver.wait(timeout=90)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
        if hold is not None:
            hold.unlink()
    log = (tmp_path / "driver.log").read_text(errors="replace")
    _wait(lambda: _processes_under(nodes.resolve()) == [], 10, "runs to end")
    store = get_store(tmp_path / "memory", embedder="hash")
    try:
        traces = store.query_traces(TraceQuery(task="slow-quad", limit=1000)).data
        assert any(t.status == Status.interrupted for t in traces), log[-3000:]
        assert store.active_claims("slow-quad") == []
        (row,) = store.list_swarms("slow-quad")
        assert row.status == "stopped"
    finally:
        store.close()


def test_resume_after_the_driver_was_killed_continues_the_swarm(
    tmp_path: Path, cluster: Any
) -> None:
    task = _slow_task(tmp_path)
    driver = _driver(tmp_path, cluster, task, "--max-experiments", "2")
    nodes = tmp_path / "nodes"
    hold: Path | None = None
    try:
        hold = _hold(nodes, "agent-0", driver)
        driver.kill()  # no cleanup at all: the actors die with their owner
        driver.wait()
    finally:
        if driver.poll() is None:
            driver.kill()
    # the held run ends only by its guard (the agent died with the driver), never recorded
    _wait(lambda: _processes_under(nodes.resolve()) == [], 30, "the guards to kill the runs")
    if hold is not None:
        hold.unlink()
    store = get_store(tmp_path / "memory", embedder="hash")
    try:
        assert store.active_claims("slow-quad"), "the killed driver left its claims"
        (swarm_dir,) = (tmp_path / "runs").iterdir()
        config = SwarmConfig(runs_dir=str(tmp_path / "runs"))
        ray = ClusterConfig(address=cluster.address, node_dir=str(nodes))
        swarm = ClusterSwarm(config, ray, store, serve=serve_memory, resume=swarm_dir.name)
        result = swarm.run()
        assert result.errors == []
        traces = check_swarm(store, swarm, experiments=2)
        assert any(t.status == Status.interrupted for t in traces), "the cut-off run is recorded"
        replicates = sum(t.role == Role.baseline for t in traces)
        assert replicates == DEFAULT_REPLICATES, "the noise was not re-measured"
    finally:
        store.close()


def test_a_missing_ray_is_a_clear_error_naming_the_extra(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from agents.cli import main\n"
        f"sys.exit(main(['run', '--ray', 'local', '--memory', {str(tmp_path / 'm')!r}]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 1, out.stderr
    assert "pip install 'labswarm[ray]'" in out.stderr
