"""Experiments per hour on the landscape: the cluster swarm (agents as Ray actors over a
simulated 2-node cluster, the embedded memory served over HTTP) against the embedded
swarm (agents as threads) on the same machine, with 1, 2, 4, 8 agents.

    .venv/bin/python benchmarks/cluster_bench.py                       # 1,2,4,8 agents
    .venv/bin/python benchmarks/cluster_bench.py --agents 1,2 --experiments 4

The landscape's runs take milliseconds, so what is measured is the swarm's own cost per
experiment: recall, proposal, claim, record (through HTTP for the cluster), process start.
Rates are over the agents' phase (first experiment started to last one finished, from the
traces' own timestamps), so cluster start, actor placement and the noise replicates are
reported apart (``setup_s``). ``overhead_ms`` is the cluster's extra wall time per
experiment per agent against the embedded swarm with as many agents. Each node declares
CPU shares (4 per node); on a machine with fewer cores the agents share them, so more
agents measure contention, not scaling. Results go to
``benchmarks/results/cluster_bench.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
LANDSCAPE = REPO / "benchmarks" / "landscape"
OUT = REPO / "benchmarks" / "results" / "cluster_bench.json"
CPUS_PER_NODE = 4


def _phase(store: Any, swarm_id: str) -> tuple[int, float]:
    """Experiments run and the seconds from the first one's start to the last one's end."""
    from memory.models import RAN_STATUSES, Role, TraceQuery

    traces = store.query_traces(TraceQuery(swarm_id=swarm_id, limit=1000)).data
    ran = [t for t in traces if t.role == Role.experiment and t.status in RAN_STATUSES]
    starts = [t.started_at for t in ran if t.started_at is not None]
    ends = [t.finished_at for t in ran if t.finished_at is not None]
    if not starts or not ends:
        return len(ran), float("nan")
    return len(ran), (max(ends) - min(starts)).total_seconds()


def _row(arm: str, agents: int, n: int, phase: float, total: float) -> dict[str, Any]:
    rate = n / phase * 3600 if phase > 0 else float("nan")
    return {
        "arm": arm,
        "agents": agents,
        "experiments": n,
        "phase_s": round(phase, 2),
        "total_s": round(total, 2),
        "setup_s": round(total - phase, 2),
        "experiments_per_hour": round(rate),
        "s_per_experiment_per_agent": round(phase * agents / n, 4) if n else None,
    }


def embedded(agents: int, experiments: int, root: Path) -> dict[str, Any]:
    from agents.swarm import Swarm, SwarmConfig
    from memory import get_store

    store = get_store(root / f"emb-{agents}" / "memory", embedder="hash")
    try:
        config = SwarmConfig(
            task=str(LANDSCAPE),
            agents=agents,
            devices="cpu:1",
            max_experiments=experiments,
            runs_dir=str(root / f"emb-{agents}" / "runs"),
        )
        started = time.perf_counter()
        swarm = Swarm(config, store)
        swarm.run()
        total = time.perf_counter() - started
        n, phase = _phase(store, swarm.swarm_id)
    finally:
        store.close()
    return _row("embedded", agents, n, phase, total)


def cluster(address: str, agents: int, experiments: int, root: Path) -> dict[str, Any]:
    from agents.cli.cluster_memory import serve_memory
    from agents.cluster import ClusterConfig, ClusterSwarm
    from agents.swarm import SwarmConfig
    from memory import get_store

    store = get_store(root / f"ray-{agents}" / "memory", embedder="hash")
    try:
        config = SwarmConfig(
            task=str(LANDSCAPE),
            agents=agents,
            devices="cpu",
            max_experiments=experiments,
            runs_dir=str(root / f"ray-{agents}" / "runs"),
        )
        ray_config = ClusterConfig(address=address, node_dir=str(root / "nodes"))
        started = time.perf_counter()
        swarm = ClusterSwarm(config, ray_config, store, serve=serve_memory)
        result = swarm.run()
        total = time.perf_counter() - started
        nodes = sorted({b.device.split("/")[0] for b in swarm.board.values()})
        n, phase = _phase(store, swarm.swarm_id)
        if result.errors:
            raise RuntimeError(f"cluster swarm with {agents} agents: {result.errors}")
    finally:
        store.close()
    row = _row("ray-2-nodes", agents, n, phase, total)
    row["nodes_used"] = len(nodes)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", default="1,2,4,8", help="comma list of agent counts")
    parser.add_argument("--experiments", type=int, default=6, help="experiments per agent")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    counts = [int(x) for x in args.agents.split(",")]
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # every Ray address on loopback
    from ray.cluster_utils import Cluster

    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        root = Path(tmp)
        for n in counts:
            rows.append(embedded(n, args.experiments, root))
            print(json.dumps(rows[-1]), flush=True)
        c = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 0, "num_gpus": 0, "include_dashboard": False},
        )
        for _ in range(2):
            c.add_node(num_cpus=CPUS_PER_NODE, num_gpus=0)
        try:
            for n in counts:
                rows.append(cluster(c.address, n, args.experiments, root))
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
            if one:
                r["scaling_efficiency"] = round(r["experiments_per_hour"] / (one * r["agents"]), 3)
    report = {
        "machine": {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "experiments_per_agent": args.experiments,
        "rows": rows,
        "median_overhead_ms": statistics.median(
            [r["overhead_ms"] for r in rows if "overhead_ms" in r] or [float("nan")]
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
