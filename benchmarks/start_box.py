"""How many of a search box's random draws finish on this machine.

The builtin proposer's first proposals of a swarm are drawn at random from the task's box
(Optuna's start-up phase), and a box can be wide enough that many of them run out of
memory or past the hard timeout: each such run costs a device its whole timeout and tells
the search only that the corner is bad. This script draws ``--draws`` configurations at
random from a task's box on the CPU, runs each one for real the way an agent does (a copy
of the task, ``agents.runner.run_program``: the run's memory share, the task's hard
timeout, one thread per run, ``--jobs`` at once), and prints what became of them.

``--box declared`` is the box the task declares (its ``[space.NAME]`` tables, the default
box for the other knobs); ``--box default`` ignores the tables (every knob gets the default
box); ``--box both`` runs the two on the same seeds.

Run from the repository root::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/start_box.py --draws 12 --budget 20
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agents.devices import cpu_devices  # noqa: E402
from agents.knobs import set_knobs  # noqa: E402
from agents.program import Program  # noqa: E402
from agents.proposers.builtin import search_space  # noqa: E402
from agents.runner import OUT_OF_MEMORY, RunResult, run_program  # noqa: E402
from agents.task import Task, load_task  # noqa: E402
from agents.workspace import Workspace  # noqa: E402


def draws(task: Task, root: Program, n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` configurations drawn uniformly from ``task``'s CPU box (Optuna's random
    sampler, as the builtin proposer's start-up phase draws them)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = search_space(task, root, "cpu")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    return [study.ask(space).params for _ in range(n)]


def outcome(result: RunResult) -> str:
    """What became of a run, in the words the report counts."""
    if result.status == "ok":
        return "finished"
    if result.status == "timeout":
        return "timeout"
    if result.error.startswith(OUT_OF_MEMORY):
        return "out of memory"
    return "crash"


def run_box(
    task: Task, root: Program, configs: list[dict[str, Any]], budget: float, jobs: int
) -> list[tuple[RunResult, float]]:
    """Each configuration run once in its own copy of the task, ``jobs`` at once: the
    result and the wall seconds it took."""
    device = cpu_devices(jobs, threads=1)[0]
    with tempfile.TemporaryDirectory(prefix="start-box-") as tmp:

        def one(i: int) -> tuple[RunResult, float]:
            work = Workspace(task, Path(tmp) / f"w{i}")
            work.materialise(set_knobs(root, configs[i], task.knobs))
            started = time.monotonic()
            result = run_program(
                task, work.path, device, budget, Path(tmp) / f"w{i}.log", seed=1000 + i
            )
            return result, time.monotonic() - started

        with ThreadPoolExecutor(jobs) as pool:
            return list(pool.map(one, range(len(configs))))


def report(name: str, results: list[tuple[RunResult, float]], budget: float) -> None:
    counts: dict[str, int] = {}
    for result, _ in results:
        counts[outcome(result)] = counts.get(outcome(result), 0) + 1
    spent = sum(s for _, s in results)
    lost = sum(s for r, s in results if outcome(r) != "finished")
    metrics = [r.metric for r, _ in results if r.metric is not None]
    parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(f"{name}: {len(results)} draws at a {budget:g} s budget: {parts}")
    median = f"{statistics.median(metrics):.4f}" if metrics else "none finished"
    print(
        f"  device time {spent:.0f} s, {lost:.0f} s of it on runs that did not finish; "
        f"median metric of the finished: {median}"
    )
    for result, seconds in results:
        print(f"    {outcome(result):13s} {seconds:6.1f} s  metric {result.metric}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", type=Path, default=ROOT / "trainer")
    parser.add_argument("--draws", type=int, default=12)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="runs at once, one thread each")
    parser.add_argument("--box", choices=("declared", "default", "both"), default="both")
    args = parser.parse_args(argv)

    declared = load_task(args.task)
    root = Program.read(declared.root, declared.editable)
    boxes = {"declared": declared, "default": dataclasses.replace(declared, space={})}
    names = ["declared", "default"] if args.box == "both" else [args.box]
    for name in names:
        task = boxes[name]
        configs = draws(task, root, args.draws, args.seed)
        started = time.monotonic()
        results = run_box(task, root, configs, args.budget, args.jobs)
        report(f"{name} box", results, args.budget)
        print(f"  wall {time.monotonic() - started:.0f} s with {args.jobs} runs at once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
