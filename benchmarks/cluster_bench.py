"""Experiments per hour: the cluster swarm (agents as Ray actors over a simulated 2-node
cluster, the embedded memory served over HTTP) against the embedded swarm (agents as
threads) on the same machine, on the landscape (1, 2, 4, 8 agents) or the built-in trainer
(1 and 2 agents, runs of 20 s).

    .venv/bin/python benchmarks/cluster_bench.py                       # landscape, 1,2,4,8
    .venv/bin/python benchmarks/cluster_bench.py --agents 1,2 --experiments 4
    .venv/bin/python benchmarks/cluster_bench.py --task trainer        # 1,2 agents, 20 s runs

The landscape's runs take milliseconds, so what is measured there is the swarm's own cost
per experiment: recall, proposal, claim, record (through HTTP for the cluster), process
start. The trainer's runs train for ``--budget`` seconds (one thread each), so there the
question is what the cluster adds around a real run. ``run_s`` is a run's mean own wall
time (process start to exit: interpreter and imports, training, evaluation);
``between_runs_s`` the mean gap between one run's end and the same agent's next run's
start (judging, recording, recall, proposal, claim, the workspace written), the swarm's
own cost per run, which ``overhead_between_runs_ms`` compares across the two arms.

A run is an experiment or a confirmation (a re-run of a promising experiment or of a newly
kept program): both are full runs and both count toward ``--experiments``, so rates count
runs (``experiments`` and ``confirmations`` are reported apart). Rates are over the
agents' phase (first run started to last one finished, from the traces' own timestamps),
so cluster start, actor placement and the noise replicates are reported apart
(``setup_s``). ``overhead_ms`` is the cluster's extra wall time per run per agent against
the embedded swarm with as many agents (runs included, so with real runs it carries their
own variation). Each node declares CPU shares (4 per node); on a machine with fewer cores
the agents share them, so more agents measure contention, not scaling. Results go to
``benchmarks/results/cluster_bench.json`` (landscape) or ``cluster_bench_trainer.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from itertools import pairwise
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from agents.judge import DEFAULT_REPLICATES, MIN_REPLICATES  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CPUS_PER_NODE = 4


@dataclass(frozen=True)
class Bench:
    """One benchmark task and its defaults."""

    name: str
    task: Path
    agents: str  # comma list of agent counts
    experiments: int  # runs per agent (confirmations included)
    budget: float | None  # seconds per run (None: the task's own)
    out: Path
    replicates: int = DEFAULT_REPLICATES  # baseline runs for the noise (not measured)


TASKS = {
    "landscape": Bench(
        "landscape",
        REPO / "benchmarks" / "landscape",
        "1,2,4,8",
        6,
        None,
        RESULTS / "cluster_bench.json",
    ),
    "trainer": Bench(
        "trainer", REPO / "trainer", "1,2", 3, 20.0, RESULTS / "cluster_bench_trainer.json"
    ),
}


def _phase(store: Any, swarm_id: str) -> dict[str, Any]:
    """The swarm's runs (experiments and confirmations that ran), the seconds from the
    first one's start to the last one's end, the runs' mean own duration, and the mean gap
    between an agent's runs (one's end to its next one's start: judging, recording, recall,
    proposal, claim, the workspace written)."""
    from memory.models import RAN_STATUSES, RUN_ROLES, Role, TraceQuery

    traces = store.query_traces(TraceQuery(swarm_id=swarm_id, limit=1000)).data
    ran = [
        t
        for t in traces
        if t.role in RUN_ROLES
        and t.status in RAN_STATUSES
        and t.started_at is not None
        and t.finished_at is not None
    ]
    phase = float("nan")
    if ran:
        phase = (max(t.finished_at for t in ran) - min(t.started_at for t in ran)).total_seconds()
    durations = [(t.finished_at - t.started_at).total_seconds() for t in ran]
    gaps: list[float] = []
    for agent in {t.agent_id for t in ran}:
        mine = sorted((t for t in ran if t.agent_id == agent), key=lambda t: t.started_at)
        gaps += [(b.started_at - a.finished_at).total_seconds() for a, b in pairwise(mine)]
    return {
        "runs": len(ran),
        "experiments": sum(t.role == Role.experiment for t in ran),
        # re-runs: confirmations and re-measures
        "confirmations": sum(t.role in (Role.confirmation, Role.remeasure) for t in ran),
        "phase": phase,
        "run_s": statistics.fmean(durations) if durations else float("nan"),
        "between_runs_s": statistics.fmean(gaps) if gaps else float("nan"),
    }


def _row(arm: str, agents: int, measured: dict[str, Any], total: float) -> dict[str, Any]:
    n, phase = measured["runs"], measured["phase"]
    rate = n / phase * 3600 if phase > 0 else float("nan")
    return {
        "arm": arm,
        "agents": agents,
        "runs": n,
        "experiments": measured["experiments"],
        "confirmations": measured["confirmations"],
        "phase_s": round(phase, 2),
        "total_s": round(total, 2),
        "setup_s": round(total - phase, 2),
        "experiments_per_hour": round(rate),
        "s_per_experiment_per_agent": round(phase * agents / n, 4) if n else None,
        "run_s": round(measured["run_s"], 3),
        "between_runs_s": round(measured["between_runs_s"], 3),
    }


def _config(bench: Bench, agents: int, experiments: int, devices: str, home: Path) -> Any:
    from agents.swarm import SwarmConfig

    return SwarmConfig(
        task=str(bench.task),
        agents=agents,
        devices=devices,
        budget=bench.budget,
        max_experiments=experiments,
        replicates=bench.replicates,
        runs_dir=str(home / "runs"),
    )


def embedded(bench: Bench, agents: int, experiments: int, root: Path) -> dict[str, Any]:
    from agents.swarm import Swarm
    from memory import get_store

    home = root / f"emb-{agents}"
    store = get_store(home / "memory", embedder="hash")
    try:
        config = _config(bench, agents, experiments, "cpu:1", home)
        started = time.perf_counter()
        swarm = Swarm(config, store)
        swarm.run()
        total = time.perf_counter() - started
        measured = _phase(store, swarm.swarm_id)
    finally:
        store.close()
    return _row("embedded", agents, measured, total)


def cluster(
    bench: Bench, address: str, agents: int, experiments: int, root: Path
) -> dict[str, Any]:
    from agents.cli.cluster_memory import serve_memory
    from agents.cluster import ClusterConfig, ClusterSwarm
    from memory import get_store

    home = root / f"ray-{agents}"
    store = get_store(home / "memory", embedder="hash")
    try:
        config = _config(bench, agents, experiments, "cpu", home)
        ray_config = ClusterConfig(address=address, node_dir=str(root / "nodes"))
        started = time.perf_counter()
        swarm = ClusterSwarm(config, ray_config, store, serve=serve_memory)
        result = swarm.run()
        total = time.perf_counter() - started
        nodes = sorted({b.device.split("/")[0] for b in swarm.board.values()})
        measured = _phase(store, swarm.swarm_id)
        if result.errors:
            raise RuntimeError(f"cluster swarm with {agents} agents: {result.errors}")
    finally:
        store.close()
    row = _row("ray-2-nodes", agents, measured, total)
    row["nodes_used"] = len(nodes)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="landscape")
    parser.add_argument(
        "--agents", help="comma list of agent counts (landscape 1,2,4,8; trainer 1,2)"
    )
    parser.add_argument(
        "--experiments", type=int, help="runs per agent, confirmations included (6; trainer 3)"
    )
    parser.add_argument("--budget", type=float, help="seconds per run (the task's; trainer 20)")
    parser.add_argument(
        "--replicates",
        type=int,
        default=DEFAULT_REPLICATES,
        help=f"baseline runs for the noise, not measured (default {DEFAULT_REPLICATES})",
    )
    parser.add_argument("--out", type=Path, help="the results file (benchmarks/results/...)")
    args = parser.parse_args()
    bench = replace(TASKS[args.task], replicates=max(MIN_REPLICATES, args.replicates))
    if args.budget is not None:
        bench = replace(bench, budget=args.budget)
    counts = [int(x) for x in (args.agents or bench.agents).split(",")]
    experiments = args.experiments or bench.experiments
    out: Path = args.out or bench.out
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address on loopback
    from ray.cluster_utils import Cluster

    load_before = os.getloadavg()[0]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        root = Path(tmp)
        for n in counts:
            rows.append(embedded(bench, n, experiments, root))
            print(json.dumps(rows[-1]), flush=True)
        c = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "num_gpus": 0, "include_dashboard": False},
        )
        for _ in range(2):
            c.add_node(num_cpus=CPUS_PER_NODE, num_gpus=0)
        try:
            for n in counts:
                rows.append(cluster(bench, c.address, n, experiments, root))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            c.shutdown()
    by = {(r["arm"], r["agents"]): r for r in rows}
    one = by.get(("ray-2-nodes", 1), {}).get("experiments_per_hour")
    for r in rows:
        if r["arm"] == "ray-2-nodes":
            emb = by.get(("embedded", r["agents"]))
            if emb and emb["s_per_experiment_per_agent"] and r["s_per_experiment_per_agent"]:
                extra = r["s_per_experiment_per_agent"] - emb["s_per_experiment_per_agent"]
                r["overhead_ms"] = round(extra * 1000, 1)
                gap = r["between_runs_s"] - emb["between_runs_s"]
                r["overhead_between_runs_ms"] = round(gap * 1000, 1)
            if one:
                r["scaling_efficiency"] = round(r["experiments_per_hour"] / (one * r["agents"]), 3)
    report = {
        "task": bench.name,
        "budget_s": bench.budget,
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1m_before": round(load_before, 2),
            "load_avg_1m": round(os.getloadavg()[0], 2),
        },
        "experiments_per_agent": experiments,
        "replicates": bench.replicates,
        "rows": rows,
        "median_overhead_ms": statistics.median(
            [r["overhead_ms"] for r in rows if "overhead_ms" in r] or [float("nan")]
        ),
        "median_overhead_between_runs_ms": statistics.median(
            [r["overhead_between_runs_ms"] for r in rows if "overhead_between_runs_ms" in r]
            or [float("nan")]
        ),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in report.items() if k != "rows"}))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
