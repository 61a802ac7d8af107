"""``labswarm run``: start (or ``--resume``) an embedded swarm on a task.

    labswarm run                                   # quick swarm on the built-in task
    labswarm run --hours 8                         # all GPUs, one agent each, 8 hours
    labswarm run --task ~/autoresearch --proposer llm --model anthropic:claude-sonnet-4-5
    labswarm run --resume                          # continue the last swarm after a kill

With none of ``--budget``, ``--hours``, ``--max-experiments`` it is a *quick swarm*: runs of
at most 20 s on a CPU (the task's budget on a GPU), 3 experiments per agent.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any

QUICK_CPU_BUDGET = 20.0
QUICK_EXPERIMENTS = 3


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a swarm of researcher agents on a task",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--task", help="task directory with a task.toml (default: built-in trainer)")
    p.add_argument("--agents", type=int, help="agents (default: one per GPU; 2 on a CPU)")
    p.add_argument(
        "--devices", default="auto", help="auto | cpu | cpu:THREADS | GPU list such as 0,1"
    )
    p.add_argument("--budget", type=float, help="seconds per run (default: the task's)")
    p.add_argument("--max-experiments", type=int, help="experiments per agent")
    p.add_argument("--hours", type=float, help="stop starting runs after this many hours")
    p.add_argument("--proposer", choices=("builtin", "llm"), default="builtin")
    p.add_argument("--model", help="for --proposer llm: provider:model, or hf:/path/model.gguf")
    p.add_argument("--base-url", help="OpenAI-compatible server for --model (vLLM, llama.cpp)")
    p.add_argument("--memory", help="memory: directory, sqlite:///, postgresql://, http://")
    p.add_argument(
        "--seed", action="append", default=[], metavar="PACK", help="import a pack first"
    )
    p.add_argument(
        "--resume", nargs="?", const="latest", metavar="SWARM", help="continue a stopped swarm"
    )
    p.add_argument("--replicates", type=int, default=2, help="baseline runs for the noise")
    p.add_argument("--runs-dir", default="runs", help="where swarm directories go")
    p.add_argument("--no-live", action="store_true", help="log lines instead of the live view")
    p.set_defaults(func=cmd_run)


def _config(args: argparse.Namespace) -> Any:
    from agents.swarm import SwarmConfig

    quick = (
        args.budget is None
        and args.hours is None
        and args.max_experiments is None
        and not args.resume  # a resume keeps the stopped swarm's own limits
    )
    if args.max_experiments is not None and args.max_experiments < 1:
        raise ValueError("--max-experiments must be at least 1")
    if args.budget is not None and args.budget <= 0:
        raise ValueError("--budget must be positive")
    if args.hours is not None and args.hours <= 0:
        raise ValueError("--hours must be positive")
    if args.replicates < 1:
        raise ValueError("--replicates must be at least 1")
    return SwarmConfig(
        task=args.task,
        agents=args.agents,
        devices=args.devices,
        budget=args.budget,
        max_experiments=QUICK_EXPERIMENTS if quick else args.max_experiments,
        hours=args.hours,
        proposer=args.proposer,
        model=args.model,
        base_url=args.base_url,
        replicates=args.replicates,
        runs_dir=args.runs_dir,
        quick_budget=QUICK_CPU_BUDGET if quick else None,
    ), quick


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agents.swarm import Swarm, SwarmError
    from agents.view import LiveView, summary, swarm_traces, write_outputs
    from memory import get_store

    console = Console()
    config, quick = _config(args)
    store = get_store(args.memory)
    try:
        for pack in args.seed:
            from memory.packs import import_pack

            res = import_pack(store, pack)
            console.print(
                f"seeded from {pack}: {res.added_traces} traces, {res.added_findings} findings "
                f"({res.skipped} already present)"
            )
        swarm = Swarm(config, store, resume=args.resume)
        if quick and not args.resume:
            console.print(
                f"quick swarm: {len(swarm.devices)} agents, {swarm.budget:g} s per run, "
                f"{QUICK_EXPERIMENTS} experiments each (use --hours or --max-experiments "
                "for a real one)"
            )
        errors: list[BaseException] = []

        def target() -> None:
            try:
                swarm.run()
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        runner = threading.Thread(target=target, name="swarm")

        def on_signal(signum: int, frame: Any) -> None:
            swarm.stop()

        previous = signal.signal(signal.SIGTERM, on_signal)
        runner.start()
        live = not args.no_live and console.is_terminal
        try:
            if live:
                with LiveView(swarm, console):
                    while runner.is_alive():
                        runner.join(timeout=0.5)
            else:
                while runner.is_alive():
                    runner.join(timeout=0.5)
        except KeyboardInterrupt:
            console.print("stopping: runs in flight are killed and recorded as interrupted")
            swarm.stop()
            runner.join()
        finally:
            signal.signal(signal.SIGTERM, previous)
        if errors:
            if isinstance(errors[0], SwarmError):
                print(f"labswarm: error: {errors[0]}", file=sys.stderr)
                return 1
            raise errors[0]
        traces = swarm_traces(swarm)
        tsv, png = write_outputs(swarm, traces)
        console.print(summary(swarm, traces))
        console.print(f"results: {tsv}\nchart:   {png}")
        result = swarm.result
        if result is not None and result.errors:
            for err in result.errors:
                print(f"labswarm: agent error: {err}", file=sys.stderr)
            return 1
        return 0
    finally:
        store.close()
