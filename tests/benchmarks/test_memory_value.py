"""A small, fast run of the memory-value benchmark (2 agents, 4 experiments per arm,
2 seeds) against the real landscape, real swarm and real embedded memory (MiniLM), and
the measures it reports, checked on hand-made traces."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import memory_value_measures as m  # noqa: E402

from memory.models import ExperimentPublic, Role, Status
from tests.benchmarks.conftest import BENCH, LANDSCAPE, REPO


def test_small_benchmark_fills_every_table(tmp_path: Path) -> None:
    out = tmp_path / "results"
    cmd = [
        sys.executable,
        str(BENCH / "memory_value.py"),
        "--agents", "2",
        "--experiments", "4",
        "--seeds", "2",
        "--scaling", "1,2",
        "--scaling-experiments", "2",
        "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in (
        "## Arms",
        "## Best val_bpb against experiments spent",
        "## Platform overhead per experiment",
        "## Experiments/hour against the number of agents",
        "## Targets",
    ):
        assert heading in report
    tables = [ln for ln in report.splitlines() if ln.startswith("| ") and "---" not in ln]
    for arm in ("shared", "isolated", "single", "shared-no-recall"):
        assert sum(1 for ln in tables if ln.startswith(f"| {arm} |")) == 3, arm
    empty = [ln for ln in tables if re.search(r"\|\s*(n/a|nan)?\s*\|", ln)]
    assert not empty, empty
    assert "--agents 2 --experiments 4 --seeds 2" in report
    assert re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", report)
    assert (out / "best_vs_experiments.png").stat().st_size > 5000
    assert (out / "throughput.png").stat().st_size > 3000
    data = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for arm in ("shared", "isolated", "single", "shared-no-recall"):
        assert data["arms"][arm]["experiments"] == [4, 4], arm
    # one memory refuses what already ran: no program ran twice in the shared arm
    assert data["arms"]["shared"]["duplicates"] == [0, 0]


def _trace(
    i: int,
    status: Status,
    metric: float | None,
    fp: str,
    agent: str = "s/agent-0",
    role: Role = Role.experiment,
    config: dict | None = None,
) -> ExperimentPublic:
    t0 = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=10 * i)
    tail = f"{m.CONFIG_PREFIX}{json.dumps(config)}\n" if config else ""
    return ExperimentPublic(
        id=f"t{i}", task="x", agent_id=agent, role=role, fingerprint=fp, status=status,
        metric=metric, created_at=t0, started_at=t0, finished_at=t0 + timedelta(seconds=2),
        duration_s=1.5, log_tail=tail,
    )  # fmt: skip


def test_measures_on_hand_made_traces() -> None:
    base = [_trace(0, Status.keep, 4.0, "root", role=Role.baseline)]
    cfg = {"MATRIX_LR": 0.04, "EMBED_LR": 0.2, "HEAD_LR": 0.5, "DEPTH_CPU": 3,
           "WIDTH_CPU": 128, "WARMDOWN_RATIO": 0.4, "LOGIT_SOFTCAP": 0.0}  # fmt: skip
    exps = [
        _trace(1, Status.discard, 4.2, "a"),
        _trace(2, Status.keep, 3.8, "b"),
        _trace(3, Status.discard, 3.9, "a"),  # ran twice
        _trace(4, Status.crash, None, "c", config=cfg),
        _trace(5, Status.crash, None, "d", config=dict(cfg, HEAD_LR=0.51)),  # same region
        _trace(6, Status.discard, 4.1, "root"),  # the unmodified program again
    ]
    assert m.duplicate_runs(base, exps) == 2
    assert m.best_curve(base, exps, 7) == [4.0, 4.0, 3.8, 3.8, 3.8, 3.8, 3.8, 3.8]
    assert m.experiments_to_reach([4.0, 4.0, 3.8], 3.8) == 2
    assert m.experiments_to_reach([4.0, 4.0, 3.8], 3.7) is None
    assert m.failed_region_runs(exps, m.Metric(LANDSCAPE)) == 1
    # consecutive starts 10 s apart, runs of 1.5 s: 8.5 s of overhead each
    assert m.overheads(base + exps) == [8.5] * 5
    other = [_trace(i, Status.discard, 4.0, f"o{i}", agent="u/agent-0") for i in (7, 8)]
    order = [t.id for t in m.interleave([exps[:2], other])]
    assert order == ["t1", "t7", "t2", "t8"]


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    cmd = [sys.executable, str(BENCH / "memory_value.py"), "--agents", "3", "--experiments", "4"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "--experiments 4 must divide by --agents 3" in proc.stderr
