"""``kill -9`` of a real swarm process mid-run, then ``labswarm run --resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agents.judge import DEFAULT_REPLICATES
from agents.workspace import live_members
from memory import get_store
from memory.models import RUN_ROLES, Role, Status, TraceQuery
from tests.agents.conftest import make_task, popen_interruptible

SLOW = """\
import math
import os
import time

LR = 0.1

# experiments sleep while the flag file exists: the swarm is killed meanwhile (a run gets
# an allow-listed environment, so a file, not a variable, tells it)
if LR != 0.1 and os.path.exists(FLAG_PATH):
    time.sleep(300)
print("---")
print(f"val_loss: {(math.log(LR) - math.log(0.3)) ** 2:.6f}")
"""

LABSWARM = str(Path(sys.executable).parent / "labswarm")


def _alive(pgid: int) -> bool:
    """A member of the group still runs (a zombie does not: init reaps it in its own time,
    and ``killpg(pgid, 0)`` would still succeed on it)."""
    return bool(live_members(pgid))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "cut_off"),
    [([], Role.experiment), (["--short-budget", "0.5"], Role.short)],
    ids=["full-runs", "short-runs"],
)
def test_kill_9_then_resume_records_interrupted_and_keeps_everything(tmp_path, extra, cut_off):
    """With --short-budget the runs in flight are short runs: recorded as such."""
    flag = tmp_path / "sleep.flag"
    flag.write_text("sleep")
    task_dir = make_task(
        tmp_path / "slow", SLOW.replace("FLAG_PATH", repr(str(flag))), name="slow", noise_min=0.01
    )
    mem, runs = tmp_path / "mem", tmp_path / "runs"
    # unsandboxed: a sandboxed run dies with the swarm (bwrap --die-with-parent); these
    # runs outlive the kill -9, so the resume must reap them
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash", "LABSWARM_SANDBOX": "off"}
    args = [
        LABSWARM,
        "run",
        "--task",
        str(task_dir),
        "--memory",
        str(mem),
        "--runs-dir",
        str(runs),
        "--agents",
        "2",
        "--devices",
        "cpu",
        "--budget",
        "1",
        "--max-experiments",
        "2",
        "--no-live",
        *extra,
    ]
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        pidfiles: list[Path] = []
        while time.monotonic() < deadline:
            logs = [p for p in runs.glob("*/agents/*/logs/*.log") if "baseline" not in p.name]
            pidfiles = list(runs.glob("*/agents/*/work/.labswarm-run.json"))
            if len(logs) == 2 and len(pidfiles) == 2:
                break
            assert proc.poll() is None, "the swarm ended before its runs were in flight"
            time.sleep(0.2)
        else:
            pytest.fail("no experiment in flight within 90 s")
        in_flight = {p.stem for p in logs}
        pgids = [json.loads(p.read_text())["pgid"] for p in pidfiles]
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # kill -9 of the swarm process only
        proc.wait()
    assert all(_alive(g) for g in pgids), "runs outlive a kill -9 until the resume reaps them"

    flag.unlink()  # the resumed runs finish
    store = get_store(mem, embedder="hash")
    before = {t.id for t in store.query_traces(TraceQuery(task="slow", limit=100)).data}
    assert len(store.active_claims("slow")) == 2
    store.close()
    (meta,) = runs.glob("*/swarm.json")
    seed = json.loads(meta.read_text(encoding="utf-8"))["config"]["seed"]

    done = subprocess.run(
        [LABSWARM, "run", "--resume", "--memory", str(mem), "--runs-dir", str(runs), "--no-live"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert not any(_alive(g) for g in pgids), "the resume killed the orphaned runs"
    # the resumed agents draw from the stopped swarm's own seed, saved in swarm.json
    assert json.loads(meta.read_text(encoding="utf-8"))["config"]["seed"] == seed
    assert f"(sampler seed {seed})" in " ".join(done.stdout.split())

    store = get_store(mem, embedder="hash")
    try:
        traces = store.query_traces(TraceQuery(task="slow", sort="created_at", limit=100)).data
        by_id = {t.id: t for t in traces}
        assert before <= set(by_id), "every trace recorded before the kill is still there"
        assert len([t for t in traces if t.role == Role.baseline]) == DEFAULT_REPLICATES
        interrupted = {t.id for t in traces if t.status == Status.interrupted}
        assert interrupted == in_flight, "each cut-off run is recorded, under its own id"
        for tid in interrupted:
            assert "in flight" in by_id[tid].error and by_id[tid].fingerprint
            assert by_id[tid].role == cut_off
            if cut_off == Role.short:
                assert tid.startswith("s-") and by_id[tid].budget_s == 0.5
        assert store.active_claims("slow") == [], "the cut-off runs' claims are released"
        finished = [
            t for t in traces if t.role in RUN_ROLES and t.status in (Status.keep, Status.discard)
        ]
        # both agents went on to their 2 runs each (a candidate's confirmation and a
        # keep's re-measure count as runs and may take an agent past its limit)
        assert len(finished) >= 4, [(t.role, t.status, t.agent_id) for t in finished]
        swarms = store.list_swarms("slow")
        assert len(swarms) == 1 and swarms[0].status == "finished"
    finally:
        store.close()


@pytest.mark.slow
def test_ctrl_c_records_the_runs_in_flight_as_interrupted_before_exiting(tmp_path):
    """SIGINT on ``labswarm run``: the process waits for its agents, which kill their runs
    and record them ``interrupted`` with their claims released (a Ctrl-C that interrupted
    ``Thread.join`` once let the process exit first)."""
    flag = tmp_path / "sleep.flag"
    flag.write_text("sleep")
    task_dir = make_task(
        tmp_path / "slow", SLOW.replace("FLAG_PATH", repr(str(flag))), name="slow", noise_min=0.01
    )
    mem, runs = tmp_path / "mem", tmp_path / "runs"
    env = {**os.environ, "LABSWARM_EMBEDDER": "hash"}
    args = [LABSWARM, "run", "--task", str(task_dir), "--memory", str(mem)]
    args += ["--runs-dir", str(runs), "--agents", "2", "--devices", "cpu", "--budget", "1"]
    args += ["--max-experiments", "2", "--no-live"]
    proc = popen_interruptible(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            pidfiles = list(runs.glob("*/agents/*/work/.labswarm-run.json"))
            logs = [p for p in runs.glob("*/agents/*/logs/*.log") if "baseline" not in p.name]
            if len(logs) == 2 and len(pidfiles) == 2:
                break
            assert proc.poll() is None, "the swarm ended before its runs were in flight"
            time.sleep(0.2)
        else:
            pytest.fail("no experiment in flight within 90 s")
        in_flight = {p.stem for p in logs}
        pgids = [json.loads(p.read_text())["pgid"] for p in pidfiles]
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # its default plan re-tests at its end: the first Ctrl-C stops the search, then the
    # finals re-test what it measured -- nothing but the root here, so none run
    assert "stopping the search" in out.decode(errors="replace")
    assert not any(_alive(g) for g in pgids), "no run outlives the swarm"
    store = get_store(mem, embedder="hash")
    try:
        traces = store.query_traces(TraceQuery(task="slow", limit=100)).data
        interrupted = {t.id for t in traces if t.status == Status.interrupted}
        assert interrupted == in_flight, "every run in flight is recorded before the exit"
        assert store.active_claims("slow") == []
        assert {a.status for a in store.list_agents()} == {"stopped"}
    finally:
        store.close()
