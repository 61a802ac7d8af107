"""The arms of the memory-value benchmark: each one runs the unchanged embedded swarm.

- ``shared``: N agents, one memory (the labswarm default).
- ``isolated``: N agents, each its own memory (N one-agent swarms, each its own store).
- ``single``: one agent, the same total number of experiments.
- ``shared-no-recall``: N agents, one memory, with the pre-proposal recall switched off:
  each agent's recall and proposer see only its own traces (no champion of others, no
  related traces, no claims, no findings); the duplicate check and claims stay global.

Recall off is ``SwarmConfig(recall=False)``: each agent's recall and proposer read only its
own traces; the duplicate refusal and claims stay shared.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from agents.swarm import Swarm, SwarmConfig
from memory import get_store
from memory.base import Store
from memory.models import ExperimentPublic, TraceQuery

log = logging.getLogger(__name__)

ARMS = ("shared", "isolated", "single", "shared-no-recall")


@dataclass
class SwarmRun:
    """What one swarm left in memory, and how long it took."""

    swarm_id: str
    agents: int
    traces: list[ExperimentPublic]
    wall_s: float
    noise: float
    errors: list[str] = field(default_factory=list)


def _all_traces(store: Store, task: str, swarm_id: str) -> list[ExperimentPublic]:
    out: list[ExperimentPublic] = []
    while True:
        page = store.query_traces(
            TraceQuery(task=task, swarm_id=swarm_id, sort="created_at", limit=1000, offset=len(out))
        )
        out.extend(page.data)
        if len(page.data) < 1000:
            return out


def run_swarm(
    task_dir: Path,
    store: Store,
    runs_dir: Path,
    agents: int,
    per_agent: int,
    seed: int,
    recall: bool = True,
    devices: str = "cpu:1",
    budget: float | None = None,
) -> SwarmRun:
    """One embedded swarm of ``agents`` agents, ``per_agent`` experiments each."""
    config = SwarmConfig(
        task=str(task_dir),
        agents=agents,
        devices=devices,
        budget=budget,
        max_experiments=per_agent,
        seed=seed,
        runs_dir=str(runs_dir),
        python=sys.executable,
        max_refusals=16,
        recall=recall,
    )
    swarm = Swarm(config, store)
    t0 = time.perf_counter()
    result = swarm.run()
    wall = time.perf_counter() - t0
    if result.errors:
        log.warning("swarm %s: %s", swarm.swarm_id, "; ".join(result.errors))
    traces = _all_traces(store, swarm.task.name, swarm.swarm_id)
    return SwarmRun(swarm.swarm_id, agents, traces, wall, result.noise, list(result.errors))


@dataclass
class ArmRun:
    """One arm at one seed: its swarms (one, or N for the isolated arm)."""

    arm: str
    seed: int
    swarms: list[SwarmRun]

    @property
    def traces(self) -> list[ExperimentPublic]:
        return [t for s in self.swarms for t in s.traces]


def run_arm(
    arm: str, seed: int, task_dir: Path, n_agents: int, total: int, workdir: Path
) -> ArmRun:
    """Run ``arm`` at ``seed`` with ``total`` experiments in all; memory lives in workdir."""
    if arm not in ARMS:
        raise ValueError(f"arm {arm!r}: expected one of {', '.join(ARMS)}")
    if total % n_agents:
        raise ValueError(f"total experiments {total} must divide by {n_agents} agents")
    os.environ["LANDSCAPE_SEED"] = str(seed)  # the landscape's noise stream for this seed
    root = workdir / f"{arm}-s{seed}"
    root.mkdir(parents=True, exist_ok=True)
    swarms: list[SwarmRun] = []
    plans: list[tuple[int, int, bool]]
    if arm == "shared":
        plans = [(n_agents, total // n_agents, True)]
    elif arm == "shared-no-recall":
        plans = [(n_agents, total // n_agents, False)]
    elif arm == "single":
        plans = [(1, total, True)]
    else:
        plans = [(1, total // n_agents, True)] * n_agents
    for j, (agents, per_agent, recall) in enumerate(plans):
        store = get_store(root / f"memory-{j}")
        try:
            swarms.append(
                run_swarm(
                    task_dir,
                    store,
                    root / f"runs-{j}",
                    agents,
                    per_agent,
                    seed * 100 + j,
                    recall,
                )
            )
        finally:
            store.close()
    return ArmRun(arm, seed, swarms)


def scratch_dir(keep: Path | None) -> Path:
    """Where the swarms' memories and workspaces go (a fresh temp dir unless ``keep``)."""
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        return keep
    return Path(tempfile.mkdtemp(prefix="labswarm_memval_"))


def remove_scratch(path: Path, keep: Path | None) -> None:
    if keep is None:
        shutil.rmtree(path, ignore_errors=True)
