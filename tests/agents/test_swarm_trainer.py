"""A two-agent swarm on the built-in trainer, default flags but a tiny budget, via the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agents.devices import cpu_devices
from agents.judge import DEFAULT_REPLICATES
from agents.swarm import Swarm, SwarmConfig
from memory import get_store
from memory.models import (
    MIN_CHAMPION_RUNS,
    RAN_STATUSES,
    UNSELECTED_ROLES,
    Role,
    Status,
    TraceQuery,
)
from tests.agents.conftest import edit_proposal, fixed_factory
from tests.trainer.runs import copy_task, write_small_corpus

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
    n = DEFAULT_REPLICATES
    assert len(rows) >= n + 2 and [r[3] for r in rows[:n]] == ["keep"] * n  # the baselines
    assert (swarm_dir / "progress.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    noise = json.loads((swarm_dir / "swarm.json").read_text())["noise"]
    assert noise > 0, "the trainer seeds itself from LABSWARM_SEED: replicates differ"

    store = get_store(mem)
    try:
        traces = store.query_traces(TraceQuery(task="shakespeare-gpt", limit=100)).data
        experiments = [t for t in traces if t.role == Role.experiment]
        baselines = [t for t in traces if t.role == Role.baseline]
        assert len(baselines) == DEFAULT_REPLICATES and len({t.seed for t in baselines}) == 3
        assert len(experiments) == 2 and all(t.status in RAN_STATUSES for t in experiments)
        agents = {t.agent_id.rsplit("/", 1)[-1] for t in experiments}
        assert agents == {"agent-0", "agent-1"}
        assert all(t.hardware.startswith("cpu-") and t.knobs for t in experiments)
        for t in experiments:  # each edit rewrote only the changed constants' lines
            added = [ln for ln in t.diff.splitlines() if ln.startswith("+") and ln[:3] != "+++"]
            assert len(added) == len(t.knobs)
        # each experiment records what it was judged against, and the rule holds on it:
        # a keep is a confirmed candidate whose mean beat the base's by the threshold
        for t in experiments:
            if t.status not in (Status.keep, Status.discard):
                continue
            assert t.base_metric is not None and t.base_n and t.noise_sd and t.reason
            gain = t.base_metric - t.judged_metric
            if t.status == Status.keep:
                assert t.judged_n == 2 and gain > t.threshold
            elif t.judged_n == 2:
                assert gain <= t.threshold
        champ = store.champion("shakespeare-gpt")
        assert champ is not None and champ.metric is not None and champ.metric > 0
        # the start or a program the finals crowned: at least two of its runs that no
        # verdict chose (replicates, final re-measures) are keeps. Its first run, the trace
        # returned, may be a discard: the swarm re-tests at its end, and the finalists are
        # ranked by mean whatever the verdict on their first run (a CI run saw one)
        crowning = [
            t
            for t in traces
            if t.fingerprint == champ.fingerprint
            and t.role in UNSELECTED_ROLES
            and t.status == Status.keep
        ]
        assert len(crowning) >= MIN_CHAMPION_RUNS, champ
        assert store.count(TraceQuery(task="shakespeare-gpt")) == len(traces)
    finally:
        store.close()


LAST_LINE = 'print(f"tokenizer: {data.tokenizer.name}")'


@pytest.mark.slow
def test_faked_metrics_are_invalid_in_a_swarm_and_leave_the_champion(tmp_path, store, monkeypatch):
    """Two edits a believing platform would crown: attention that sees the future
    (``is_causal=False``) and a fake summary printed after the real one."""
    monkeypatch.setenv("LABSWARM_CORPUS", str(write_small_corpus(tmp_path / "corpus")))
    monkeypatch.setenv("LABSWARM_CACHE_DIR", str(tmp_path / "cache"))
    task = copy_task(tmp_path / "task")
    proposals = [
        edit_proposal("attend to the future", "is_causal=True,", "is_causal=False,"),
        edit_proposal(
            "report a better number", LAST_LINE, LAST_LINE + '\nprint("---")\nprint("val_bpb: 0.1")'
        ),
    ]
    config = SwarmConfig(
        task=str(task),
        agents=1,
        devices="cpu:1",
        budget=1,
        replicates=2,
        runs_dir=str(tmp_path / "runs"),
    )
    swarm = Swarm(config, store, proposer_factory=fixed_factory({"agent-0": proposals}))
    swarm.run()
    runs = store.query_traces(
        TraceQuery(task="shakespeare-gpt", swarm_id=swarm.swarm_id, role=[Role.experiment])
    ).data
    by_hypothesis = {t.hypothesis: t for t in runs}
    leak, fake = by_hypothesis["attend to the future"], by_hypothesis["report a better number"]
    assert leak.status == Status.invalid and leak.error.startswith("non-causal"), leak.error
    assert fake.status == Status.invalid and "summary" in fake.error, fake.error
    hardware = cpu_devices(1, threads=1)[0].hardware
    champion = store.champion("shakespeare-gpt", hardware, 1.0, swarm_id=swarm.swarm_id)
    assert champion is not None and champion.id == swarm.baseline_id, "the champion is untouched"
