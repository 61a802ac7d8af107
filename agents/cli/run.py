"""``labswarm run``: start (or ``--resume``) an embedded swarm on a task.

    labswarm run                                   # quick swarm on the built-in task
    labswarm run --hours 8                         # all GPUs, one agent each, 8 hours
    labswarm run --task ~/autoresearch --proposer llm --model anthropic:claude-sonnet-4-5
    labswarm run --resume                          # continue the last swarm after a kill
    labswarm run --seed pack.jsonl --start-from ID # run an imported program (diff shown first)

With none of ``--budget``, ``--hours``, ``--max-experiments`` it is a *quick swarm*: runs of
at most 20 s on a CPU (the task's budget on a GPU), 3 experiments per agent.

Imported traces (packs, other swarms) inform the agents but never run: ``--start-from
TRACE_ID`` is the one way to run such a program. It prints the program's whole diff against
the task's and asks for confirmation (``--yes`` accepts without asking; without a terminal
and without ``--yes`` it refuses); the swarm then measures that program as its own
baseline and builds on it.

Exit status: 0 when experiments ran; 1 on an error, or when the swarm ended with no
experiment run (each agent's stop reason is printed); 2 for bad flags.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from agents.baseline import DEFAULT_PRIOR_REPLICATES, FINALISTS_BY, RETEST
from agents.cli import cluster_run
from agents.cli.options import at_least, memory_arg, open_store, positive_float
from agents.idea import DEFAULT_NEAR_DUPLICATE, DEFAULT_NEAR_DUPLICATE_TRIES
from agents.judge import (
    DEFAULT_PROMOTE,
    DEFAULT_REMEASURE,
    DEFAULT_REPLICATES,
    DEFAULT_SCREEN,
    MIN_REPLICATES,
)
from agents.proposers.hybrid import DEFAULT_RATIO as HYBRID_RATIO
from agents.proposers.llm import MODEL_TIMEOUT_S, SERVER_PATIENCE_S
from memory import MIN_CHAMPION_RUNS

if TYPE_CHECKING:
    from agents.cluster import ClusterSwarm
    from agents.swarm import Swarm, SwarmConfig
    from memory.base import Store

    AnySwarm = Swarm | ClusterSwarm

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
    p.add_argument("--agents", type=at_least(1), help="agents (default: one per GPU; 2 on a CPU)")
    p.add_argument(
        "--devices", default="auto", help="auto | cpu | cpu:THREADS | GPU list such as 0,1"
    )
    p.add_argument("--budget", type=positive_float, help="seconds per run (default: the task's)")
    p.add_argument("--max-experiments", type=at_least(1), help="experiments per agent")
    p.add_argument("--hours", type=positive_float, help="stop starting runs after this many hours")
    p.add_argument(
        "--proposer",
        choices=("builtin", "llm", "hybrid"),
        default="builtin",
        help="builtin (TPE over the knobs), llm (a chat model edits the code), or hybrid "
        "(the LLM for structural changes, the builtin tuning the knobs in between)",
    )
    p.add_argument(
        "--hybrid-ratio",
        type=at_least(1, "builtin proposals per LLM proposal"),
        default=None,
        metavar="K",
        help=f"for --proposer hybrid: K builtin proposals per LLM proposal "
        f"(default {HYBRID_RATIO})",
    )
    p.add_argument(
        "--moves",
        choices=("whole", "neighbour"),
        default="whole",
        help="for --proposer builtin (and hybrid's builtin side): sample every knob at once "
        "(whole, default) or change one knob of the champion at a time (neighbour)",
    )
    p.add_argument(
        "--model", help="for --proposer llm or hybrid: provider:model, or hf:/path/model.gguf"
    )
    p.add_argument("--base-url", help="OpenAI-compatible server for --model (vLLM, llama.cpp)")
    p.add_argument(
        "--model-timeout",
        type=float,
        default=MODEL_TIMEOUT_S,
        metavar="SECONDS",
        help="for --base-url servers and openai: models: how long to wait for one answer "
        f"before asking again (default {MODEL_TIMEOUT_S:g}); a server that does not answer "
        f"for {SERVER_PATIENCE_S / 60:g} minutes stops an llm agent (a hybrid agent's builtin "
        "takes the turn)",
    )
    memory_arg(p)
    p.add_argument(
        "--seed", action="append", default=[], metavar="PACK", help="import a pack first"
    )
    p.add_argument(
        "--resume", nargs="?", const="latest", metavar="SWARM", help="continue a stopped swarm"
    )
    p.add_argument(
        "--sampler-seed",
        type=int,
        metavar="N",
        help="the proposers' random seed (default: drawn for each new swarm, shown at its "
        "end and saved in swarm.json); the same N on the same memory proposes the same",
    )
    p.add_argument(
        "--start-from",
        metavar="TRACE_ID",
        help="build on the program of this trace (an imported one too): its diff is shown "
        "and must be confirmed; it is re-measured as this swarm's baseline",
    )
    p.add_argument(
        "--yes", action="store_true", help="with --start-from: accept the shown diff unasked"
    )
    p.add_argument(
        "--replicates",
        type=at_least(MIN_REPLICATES, "the noise is the spread of repeated runs"),
        default=DEFAULT_REPLICATES,
        help=f"baseline runs for the noise (default {DEFAULT_REPLICATES})",
    )
    p.add_argument(
        "--no-confirm",
        dest="confirm",
        action="store_false",
        help="keep on one run (a t-test at 5%% false keeps) instead of re-running each "
        "candidate with another seed (an ablation: lower power, no champions)",
    )
    p.add_argument(
        "--screen",
        type=float,
        default=DEFAULT_SCREEN,
        help="a first run is re-run as a candidate when it beats its base by more than this "
        f"many noise sds (default {DEFAULT_SCREEN}; see docs/judging.md)",
    )
    p.add_argument(
        "--remeasure",
        type=at_least(0, "a count of runs"),
        default=DEFAULT_REMEASURE,
        help="extra runs of each newly kept program before it becomes a base "
        f"(default {DEFAULT_REMEASURE}; with fewer than {MIN_CHAMPION_RUNS} no keep ever "
        "becomes the swarm's champion)",
    )
    p.add_argument(
        "--prior-replicates",
        type=at_least(0, "a count of runs"),
        default=DEFAULT_PRIOR_REPLICATES,
        help="before the agents start, run each of the best configurations that memory "
        "holds from elsewhere (seed packs, other hardware or budgets) this many times, "
        f"one round of the agents in all (default {DEFAULT_PRIOR_REPLICATES}; 0: none; "
        "builtin and hybrid proposers, whole moves)",
    )
    p.add_argument(
        "--finalists",
        type=at_least(0, "a count of programs"),
        default=0,
        metavar="N",
        help="after the agents finish, re-measure the swarm's N best programs (by the mean "
        f"of their runs, whatever their first run's verdict) {MIN_CHAMPION_RUNS} times each, "
        "so the champion is the best of them: runs beyond --max-experiments; with "
        "--no-confirm --remeasure 0 every re-test comes at the end, a suspect big step "
        "included (default 0: none; not on a Ray cluster)",
    )
    p.add_argument(
        "--finalists-by",
        choices=FINALISTS_BY,
        default=None,
        help="how the finalists are chosen: by the mean of each program's runs, or by the "
        "mean a Gaussian process over the knob values of every measured program predicts "
        "(pools neighbouring configurations' runs; builtin proposer, whole moves; default "
        "model where it can, else mean)",
    )
    p.add_argument(
        "--retest",
        choices=RETEST,
        default="auto",
        help="when kept programs are re-tested: 'each' confirms and re-measures every keep "
        "as it happens (the champion moves during the swarm); 'end' re-tests nothing during "
        "the search and re-measures the best programs after it (--finalists, default half "
        "the agents), so every experiment of the search is a new configuration; 'auto' "
        "(default) is 'end' for a builtin swarm on whole moves with --max-experiments and "
        "no other re-test option, else 'each' (see docs/judging.md)",
    )
    p.add_argument(
        "--short-budget",
        type=positive_float,
        default=None,
        metavar="SECONDS",
        help="multi-fidelity: run each new program for this many seconds first, and at the "
        "full budget only if that short run ranks among the best --promote of the task's "
        "short runs (default: every run at the full budget)",
    )
    p.add_argument(
        "--promote",
        type=fraction,
        default=DEFAULT_PROMOTE,
        help=f"with --short-budget: the best fraction of short runs promoted to the full "
        f"budget (default {DEFAULT_PROMOTE:.3g})",
    )
    add_recall_arguments(p)
    p.add_argument("--runs-dir", default="runs", help="where swarm directories go")
    p.add_argument("--no-live", action="store_true", help="log lines instead of the live view")
    cluster_run.add_arguments(p)  # --ray ...: the agents as Ray actors (agents/cluster/)
    p.set_defaults(func=cmd_run, parser=p)


def fraction(text: str) -> float:
    """A fraction in (0, 1] (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 < value <= 1.0:
        raise argparse.ArgumentTypeError(f"a fraction lies in (0, 1], got {text}")
    return value


def threshold(text: str) -> float:
    """A similarity score in [-1, 1] (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not -1.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"a cosine similarity lies in -1..1, got {text}")
    return value


def add_recall_arguments(p: argparse.ArgumentParser) -> None:
    """Recall settings and the ablation switches (each turns off exactly one thing)."""
    p.add_argument(
        "--no-recall",
        dest="recall",
        action="store_false",
        help="ablation: each agent recalls only its own traces (no champion, no search by "
        "meaning, no insights; claims and the duplicate refusal stay shared)",
    )
    p.add_argument(
        "--no-semantic-recall",
        dest="semantic_recall",
        action="store_false",
        help="ablation: no search of memory by meaning (neither the base's nor the draft's)",
    )
    p.add_argument(
        "--no-near-duplicates",
        dest="refuse_near_duplicates",
        action="store_false",
        help="ablation: never send a draft back as a near duplicate of a run or a claim",
    )
    p.add_argument(
        "--near-duplicate-threshold",
        type=threshold,
        default=DEFAULT_NEAR_DUPLICATE,
        metavar="SCORE",
        help="search score (cosine) from which a free-form draft is a near duplicate of a "
        f"recorded run (default {DEFAULT_NEAR_DUPLICATE}, measured: docs/agents.md)",
    )
    p.add_argument(
        "--near-duplicate-tries",
        type=at_least(0, "a count of refusals"),
        default=DEFAULT_NEAR_DUPLICATE_TRIES,
        metavar="N",
        help="near-duplicate refusals of one iteration before the next draft passes "
        f"(default {DEFAULT_NEAR_DUPLICATE_TRIES})",
    )
    p.add_argument(
        "--no-insights",
        dest="insights",
        action="store_false",
        help="ablation: do not give the proposer memory's insights",
    )
    p.add_argument(
        "--no-follow-champion",
        dest="follow_champion",
        action="store_false",
        help="ablation: an agent never moves onto the swarm's champion (it is still shown)",
    )


def _config(args: argparse.Namespace, cache_dir: str | None) -> tuple[SwarmConfig, bool]:
    from agents.swarm import SwarmConfig

    quick = (
        args.budget is None
        and args.hours is None
        and args.max_experiments is None
        and not args.resume  # a resume keeps the stopped swarm's own limits
    )
    config = SwarmConfig(
        task=args.task,
        agents=args.agents,
        devices=args.devices,
        budget=args.budget,
        max_experiments=QUICK_EXPERIMENTS if quick else args.max_experiments,
        hours=args.hours,
        proposer=args.proposer,
        moves=args.moves,
        hybrid_ratio=args.hybrid_ratio or HYBRID_RATIO,
        model=args.model,
        base_url=args.base_url,
        model_timeout_s=args.model_timeout,
        replicates=args.replicates,
        seed=args.sampler_seed,
        confirm=args.confirm,
        screen=args.screen,
        remeasure=args.remeasure,
        prior_replicates=args.prior_replicates,
        finalists=args.finalists,
        finalists_by=args.finalists_by,
        retest=args.retest,
        short_budget=args.short_budget,
        promote=args.promote,
        recall=args.recall,
        semantic_recall=args.semantic_recall,
        refuse_near_duplicates=args.refuse_near_duplicates,
        near_duplicate_threshold=args.near_duplicate_threshold,
        near_duplicate_tries=args.near_duplicate_tries,
        insights=args.insights,
        follow_champion=args.follow_champion,
        runs_dir=args.runs_dir,
        quick_budget=QUICK_CPU_BUDGET if quick else None,
        cache_dir=cache_dir,
    )
    if config.remeasure < MIN_CHAMPION_RUNS and not config.finalists:
        print(
            f"labswarm: note: --remeasure {config.remeasure}: a kept program needs "
            f"{MIN_CHAMPION_RUNS} re-measure runs to become the champion, so the champion "
            "stays the start and no agent moves onto another agent's keep",
            file=sys.stderr,
        )
    return config, quick


def _confirm_start(args: argparse.Namespace, store: Store) -> bool:
    """Show the ``--start-from`` program's diff; True if the operator accepts it."""
    from agents.swarm import start_program
    from agents.task import load_task

    task = load_task(args.task)
    program, patch = start_program(store, task, args.start_from)
    out = sys.stdout
    out.write(
        f"--start-from {args.start_from}: this program (fingerprint {program.fingerprint}) "
        f"will run on this machine. Its whole diff against the task's program:\n"
    )
    out.write((patch or "(no change: it is the task's program)\n").rstrip("\n") + "\n")
    out.flush()
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(
            "labswarm: error: --start-from needs a confirmation: review the diff above and "
            "pass --yes (no terminal to ask on)",
            file=sys.stderr,
        )
        return False
    answer = input("Run this program? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _nothing_ran(traces: list[Any]) -> bool:
    from memory.models import RAN_STATUSES, Role

    return not any(t.role == Role.experiment and t.status in RAN_STATUSES for t in traces)


def _run_in_thread(swarm: AnySwarm, live: bool, console: Any) -> list[BaseException]:
    """Run the swarm in a thread (Ctrl-C and SIGTERM stop it); the errors it raised."""
    from agents.view import LiveView

    errors: list[BaseException] = []
    # Wait on an event, not on Thread.join: on Python 3.11 a Ctrl-C that interrupts
    # join(timeout) leaves the thread looking dead to later joins while it still runs, and
    # the process would exit before the agents record their runs as interrupted.
    finished = threading.Event()

    def target() -> None:
        try:
            swarm.run()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
        finally:
            finished.set()

    runner = threading.Thread(target=target, name="swarm")

    def on_signal(signum: int, frame: Any) -> None:
        swarm.stop()

    previous = signal.signal(signal.SIGTERM, on_signal)
    runner.start()
    try:
        if live:
            with LiveView(swarm, console):
                while not finished.wait(timeout=0.5):
                    pass
        else:
            while not finished.wait(timeout=0.5):
                pass
    except KeyboardInterrupt:
        _stop_on_interrupt(swarm, finished, console)
    finally:
        signal.signal(signal.SIGTERM, previous)
    return errors


def _stop_on_interrupt(swarm: AnySwarm, finished: threading.Event, console: Any) -> None:
    """A Ctrl-C: stop the agents (runs in flight killed, recorded interrupted) and wait
    for the swarm to end. A swarm whose finals have not begun still runs them, so what
    its search found is re-tested and judged; a second Ctrl-C stops those too."""
    from agents.swarm import Swarm

    if isinstance(swarm, Swarm) and swarm.finals_pending:
        console.print(
            "stopping the search: runs in flight are killed and recorded as interrupted; "
            f"then its {swarm.config.finalists} best program(s) are re-tested (the finals). "
            "Ctrl-C again to stop those too"
        )
        swarm.stop(search_only=True)
        try:
            while not finished.wait(timeout=0.5):
                pass
            return
        except KeyboardInterrupt:
            pass
    console.print("stopping: runs in flight are killed and recorded as interrupted")
    swarm.stop()
    while not finished.wait(timeout=0.5):
        pass


def cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agents.swarm import SEED_LIMIT, Swarm, SwarmError
    from agents.view import summary, swarm_traces, write_outputs
    from memory.packs import import_pack
    from memory.settings import get_settings

    parser: argparse.ArgumentParser = args.parser
    if args.start_from and args.resume:
        parser.error("--start-from starts a new swarm; it cannot be combined with --resume")
    if args.sampler_seed is not None and args.resume:
        parser.error("--sampler-seed: a resumed swarm goes on with its own (in its swarm.json)")
    if args.sampler_seed is not None and not 0 <= args.sampler_seed < SEED_LIMIT:
        parser.error(f"--sampler-seed: must be in 0..{SEED_LIMIT - 1}, got {args.sampler_seed}")
    if args.yes and not args.start_from:
        parser.error("--yes only confirms a --start-from diff")
    if args.hybrid_ratio is not None and args.proposer != "hybrid":
        parser.error("--hybrid-ratio: only for --proposer hybrid")
    if args.proposer != "builtin" and not args.model and not args.resume:
        parser.error(
            f"--proposer {args.proposer} needs --model (e.g. openai:gpt-4.1 or hf:/path.gguf)"
        )
    if not 0 < args.model_timeout < float("inf"):
        parser.error(
            f"--model-timeout: must be a finite number of seconds > 0, got {args.model_timeout}"
        )
    if not 0 <= args.screen < float("inf"):
        parser.error(f"--screen: must be a finite number of noise sds >= 0, got {args.screen}")
    settings = get_settings()
    console = Console()
    cache_dir = str(settings.cache_dir) if settings.cache_dir is not None else None
    config, quick = _config(args, cache_dir)
    store = open_store(args, settings)
    try:
        for pack in args.seed:
            res = import_pack(store, pack)
            console.print(
                f"seeded from {pack}: {res.added_traces} traces, {res.added_findings} findings "
                f"({res.skipped} already present)"
            )
        if args.start_from:
            if not _confirm_start(args, store):
                print("labswarm: not started", file=sys.stderr)
                return 1
            config.start_from = args.start_from
        swarm: AnySwarm
        try:
            if args.ray:
                swarm = cluster_run.make_swarm(args, config, store, settings)
                console.print(cluster_run.describe(swarm))
            else:
                swarm = Swarm(config, store, resume=args.resume)
        except SwarmError as exc:  # a setting this swarm cannot run with: nothing ran
            print(f"labswarm: error: {exc}", file=sys.stderr)
            return 1
        if quick and not args.resume and not args.ray:  # a cluster places agents later
            console.print(
                f"quick swarm: {len(swarm.devices)} agents, {swarm.budget:g} s per run, "
                f"{QUICK_EXPERIMENTS} experiments each (use --hours or --max-experiments "
                "for a real one)"
            )
        errors = _run_in_thread(swarm, not args.no_live and console.is_terminal, console)
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
        failed = False
        if result is not None and result.errors:
            for err in result.errors:
                print(f"labswarm: agent error: {err}", file=sys.stderr)
            failed = True
        if _nothing_ran(traces):
            reasons = result.stop_reasons if result is not None else {}
            for name in swarm.names:
                print(f"labswarm: {name} stopped: {reasons.get(name, 'unknown')}", file=sys.stderr)
            print("labswarm: error: the swarm ended with no experiment run", file=sys.stderr)
            failed = True
        return 1 if failed else 0
    finally:
        store.close()
