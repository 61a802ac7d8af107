"""A two-agent swarm on the built-in trainer, default flags but a tiny budget, via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory import get_store
from memory.models import RAN_STATUSES, Role, Status, TraceQuery

LABSWARM = str(Path(sys.executable).parent / "labswarm")


@pytest.mark.slow
def test_two_agent_swarm_on_the_builtin_task(tmp_path):
    mem, runs = tmp_path / "mem", tmp_path / "runs"
    cmd = [
        LABSWARM,
        "run",
        "--budget",
        "2",
        "--max-experiments",
        "1",
        "--memory",
        str(mem),
        "--runs-dir",
        str(runs),
        "--no-live",
    ]
    env = {**os.environ, "LABSWARM_CACHE_DIR": str(tmp_path / "cache")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=420, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "champion" in done.stdout

    (swarm_dir,) = runs.iterdir()
    tsv = (swarm_dir / "results.tsv").read_text().splitlines()
    assert tsv[0].split("\t") == ["commit", "val_bpb", "memory_gb", "status", "description"]
    rows = [row.split("\t") for row in tsv[1:]]
    assert len(rows) == 4 and [r[3] for r in rows[:2]] == ["keep", "keep"]  # the baselines
    assert (swarm_dir / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    noise = json.loads((swarm_dir / "swarm.json").read_text())["noise"]

    store = get_store(mem)
    try:
        traces = store.query_traces(TraceQuery(task="shakespeare-gpt", limit=100)).data
        experiments = [t for t in traces if t.role == Role.experiment]
        assert len([t for t in traces if t.role == Role.baseline]) == 2
        assert len(experiments) == 2 and all(t.status in RAN_STATUSES for t in experiments)
        agents = {t.agent_id.rsplit("/", 1)[-1] for t in experiments}
        assert agents == {"agent-0", "agent-1"}
        assert all(t.hardware.startswith("cpu-") and t.knobs for t in experiments)
        for t in experiments:  # each edit rewrote only the changed constants' lines
            added = [ln for ln in t.diff.splitlines() if ln.startswith("+") and ln[:3] != "+++"]
            assert len(added) == len(t.knobs)
        # each experiment is judged by the rule: keep iff better than its base by > noise
        for t in experiments:
            base = store.get_trace(t.parent_id)
            base_metric = store.program_metric(
                t.task, base.fingerprint, t.hardware, 2.0, swarm_id=t.swarm_id
            )
            if t.status in (Status.keep, Status.discard):
                assert (t.status == Status.keep) == (base_metric - t.metric > noise)
        champ = store.champion("shakespeare-gpt")
        assert champ is not None and champ.status == Status.keep and champ.metric > 0
        assert store.count(TraceQuery(task="shakespeare-gpt")) == len(traces)
    finally:
        store.close()
