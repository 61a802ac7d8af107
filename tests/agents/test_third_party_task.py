"""Any program is a task: a third-party-style script that prints only its own log lines
(``step 10: train loss 1.71, val loss 1.83``), reads data only its ``setup`` creates, and
ignores labswarm's seed and budget variables -- run through the workspace and as a swarm.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from agents.devices import cpu_devices
from agents.runner import run_program
from agents.swarm import Swarm, SwarmConfig, SwarmError
from agents.task import load_task
from agents.workspace import Workspace
from memory.models import RUN_ROLES, Role, Status, TraceQuery

FIXTURE = Path(__file__).parent / "fixtures" / "thirdparty"
DEV = cpu_devices(1, threads=1)[0]
VAL_LOSS = re.compile(r"val loss ([0-9.]+)")


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    root = tmp_path / "thirdparty"
    shutil.copytree(FIXTURE, root)
    return root


def _setup_runs(work: Path) -> int:
    log = work / "setup-runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_the_fixture_is_a_clean_third_party_program():
    assert not (FIXTURE / "data").exists() and not (FIXTURE / "setup-runs.log").exists()
    source = (FIXTURE / "train.py").read_text()
    assert "LABSWARM" not in source and "---" not in source and "environ" not in source


def test_setup_runs_once_and_the_pattern_gives_the_last_match(task_dir, tmp_path):
    task = load_task(task_dir)
    assert task.setup and task.metric_pattern
    ws = Workspace(task, tmp_path / "runs" / "work")
    first = run_program(task, ws.path, DEV, 1, tmp_path / "logs" / "before.log")
    assert first.status == "crash" and "data/points.csv" in first.log_tail, "needs the setup"

    done = ws.ensure_setup(DEV, tmp_path / "logs" / "setup.log")
    assert done is not None and done.status == "ok", done
    assert "wrote data/points.csv" in (tmp_path / "logs" / "setup.log").read_text()
    assert ws.ensure_setup(DEV, tmp_path / "logs" / "again.log") is None
    assert Workspace(task, ws.path).ensure_setup(DEV, tmp_path / "logs" / "x.log") is None
    assert not (tmp_path / "logs" / "again.log").exists()
    assert _setup_runs(ws.path) == 1
    assert (ws.path / "data" / "points.csv").is_file()
    assert not (task_dir / "data").exists(), "setup runs in the workspace, not the task"
    assert ws.tampered() == [], "what setup made is part of the recorded state"

    log = tmp_path / "logs" / "run.log"
    r = run_program(task, ws.path, DEV, 1, log)
    assert r.status == "ok", r.error
    losses = [float(v) for v in VAL_LOSS.findall(log.read_text())]
    assert len(losses) > 2 and r.metric == losses[-1] != losses[0]
    assert r.summary["val_loss"] == r.metric

    # the setup's protected output is restored like the task's own files
    (ws.path / "data" / "points.csv").write_text("split,x,y\nval,0,1000\n")
    assert ws.tampered() == ["data/points.csv"]
    ws.restore_protected()
    assert ws.tampered() == [] and "val,0,1000" not in (ws.path / "data/points.csv").read_text()


def test_a_failing_setup_is_reported_and_tried_again(task_dir, tmp_path):
    (task_dir / "prepare_data.py").write_text("raise SystemExit('no network to download')\n")
    task = load_task(task_dir)
    ws = Workspace(task, tmp_path / "work")
    log = tmp_path / "setup.log"
    r = ws.ensure_setup(DEV, log)
    assert r is not None and r.status == "crash" and r.returncode == 1
    assert "no network to download" in r.error and r.log_path == str(log)
    assert ws.setup_needed(), "a failed setup is not recorded as done"
    r2 = ws.ensure_setup(DEV, tmp_path / "setup2.log")
    assert r2 is not None and r2.status == "crash"


def test_a_pattern_without_a_match_is_a_crash_that_says_so(task_dir, tmp_path):
    toml = task_dir / "task.toml"
    toml.write_text(toml.read_text().replace("val loss ([0-9.eE+-]+)", "accuracy = ([0-9.]+)"))
    task = load_task(task_dir)
    ws = Workspace(task, tmp_path / "work")
    assert ws.ensure_setup(DEV, tmp_path / "setup.log").status == "ok"
    r = run_program(task, ws.path, DEV, 1, tmp_path / "run.log")
    assert r.status == "crash" and r.metric is None
    assert "no match for [metric].pattern 'accuracy = ([0-9.]+)'" in r.error


def test_a_third_party_task_runs_as_a_swarm(task_dir, tmp_path, store):
    """The script counts iterations and draws no random numbers: its replicates come out
    identical, so the swarm refuses to judge until the task declares a noise floor."""
    config = SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu:1",
        max_experiments=3,
        budget=1,
        replicates=2,
        runs_dir=str(tmp_path / "refused"),
    )
    with pytest.raises(SwarmError, match="ignores LABSWARM_SEED"):
        Swarm(config, store).run()
    toml = task_dir / "task.toml"
    toml.write_text(toml.read_text() + "\n[noise]\nmin = 0.001\n")
    config = SwarmConfig(
        task=str(task_dir),
        agents=1,
        devices="cpu:1",
        max_experiments=3,
        budget=1,
        replicates=2,
        runs_dir=str(tmp_path / "runs"),
    )
    swarm = Swarm(config, store)
    result = swarm.run()
    assert result.errors == []
    traces = store.query_traces(
        TraceQuery(task="thirdparty-regression", swarm_id=swarm.swarm_id, limit=100)
    ).data
    baselines = [t for t in traces if t.role == Role.baseline]
    experiments = [t for t in traces if t.role == Role.experiment]
    runs = [t for t in traces if t.role in RUN_ROLES]
    assert len(baselines) == 2 and len(runs) >= 3 and experiments
    assert all(t.noise_sd == 0.001 for t in experiments if t.status == Status.keep)
    for t in baselines:
        assert t.metric is not None, t.error
        assert t.metric == float(VAL_LOSS.findall(t.log_tail or "")[-1])
    assert any(t.metric is not None for t in experiments)
    work = Path(config.runs_dir) / swarm.swarm_id / "agents" / "agent-0" / "work"
    assert _setup_runs(work) == 1, "setup ran once in the workspace, before the first run"
    for t in traces:  # nothing stored names a local path
        assert str(tmp_path) not in str(t.resources) + (t.log_tail or "") + t.error
