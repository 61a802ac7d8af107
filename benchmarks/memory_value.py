"""What is shared memory worth? Shared vs isolated vs single agents on the landscape.

Runs the unchanged embedded swarm (builtin proposer, real embedded memory with MiniLM)
against ``benchmarks/landscape`` (a surrogate of real trainer runs, milliseconds a run),
in four arms with the same total number of experiments, over several seeds, then writes
``benchmarks/results/report.md`` with tables, plots, the machine, date and command.

Run from the repository root (the full benchmark, about an hour on 2 CPU cores)::

    python benchmarks/memory_value.py --agents 8 --experiments 80 --seeds 10 \\
        --trainer-experiments 3

A quick look (a minute)::

    python benchmarks/memory_value.py --agents 2 --experiments 8 --seeds 2 \\
        --scaling 1,2 --scaling-experiments 3
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import memory_value_arms as arms_mod  # noqa: E402
import memory_value_measures as m  # noqa: E402
import memory_value_report as rep  # noqa: E402

log = logging.getLogger("memory_value")

LANDSCAPE = HERE / "landscape"
RESULTS = HERE / "results"
TRAINER = HERE.parent / "trainer"


def summarise(runs: list[arms_mod.ArmRun], total: int, metric: m.Metric) -> list[rep.ArmSummary]:
    """Per-arm measures; the target of each seed is the isolated arm's final best."""
    by_arm: dict[str, rep.ArmSummary] = {}
    curves: dict[tuple[str, int], list[float]] = {}
    for run in runs:
        s = by_arm.setdefault(run.arm, rep.ArmSummary(run.arm))
        groups = [sw.traces for sw in run.swarms]
        exps = m.interleave(groups)
        base = [t for t in run.traces if t.role == m.Role.baseline and t.status in m.RAN_STATUSES]
        curve = m.best_curve(base, exps, total)
        curves[(run.arm, run.seed)] = curve
        s.curves.append(curve)
        s.experiments.append(len(exps))
        s.duplicates.append(m.duplicate_runs(base, exps))
        s.refused.append(m.refused_duplicates(run.traces))
        s.crashes.append(sum(1 for t in exps if t.status in (m.Status.crash, m.Status.timeout)))
        s.failed_region.append(m.failed_region_runs(exps, metric))
        s.overheads.extend(m.overheads(run.traces))
        s.errors.extend(e for sw in run.swarms for e in sw.errors)
    for run in runs:
        target = curves.get(("isolated", run.seed))
        if target is not None:
            by_arm[run.arm].to_target.append(
                m.experiments_to_reach(curves[(run.arm, run.seed)], target[-1])
            )
    return [by_arm[a] for a in arms_mod.ARMS if a in by_arm]


def scaling(counts: list[int], per_agent: int, workdir: Path) -> list[dict]:
    """Experiments/hour of the shared arm on the landscape against the number of agents."""
    rows = []
    for n in counts:
        run = arms_mod.run_arm(
            "shared", 1000 + n, LANDSCAPE, n, n * per_agent, workdir / f"scale-{n}"
        )
        traces = run.traces
        gaps = m.Spread.of(m.overheads(traces))
        rows.append(
            {
                "agents": n,
                "experiments": len(m.experiments(traces)),
                "per_hour": m.experiments_per_hour(traces),
                "overhead_median_s": gaps.median,
            }
        )
        log.info("scaling: %d agents, %.0f experiments/hour", n, rows[-1]["per_hour"])
    return rows


def trainer_throughput(per_agent: int, budget: float, workdir: Path) -> list[dict]:
    """1 agent vs 2 agents on the real built-in trainer on this machine."""
    from memory import get_store

    rows = []
    for n in (1, 2):
        store = get_store(workdir / f"trainer-{n}" / "memory")
        try:
            sw = arms_mod.run_swarm(
                TRAINER,
                store,
                workdir / f"trainer-{n}" / "runs",
                n,
                per_agent,
                7,
                devices="cpu",
                budget=budget,
            )
        finally:
            store.close()
        exps = m.experiments(sw.traces)
        rows.append(
            {
                "agents": n,
                "experiments": len(exps),
                "per_hour": m.experiments_per_hour(sw.traces),
                "mean_run_s": statistics.fmean(t.duration_s for t in exps if t.duration_s)
                if exps
                else float("nan"),
                "budget": budget,
            }
        )
    return rows


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs, Python {platform.python_version()}"


def write_report(
    out: Path,
    summaries: list[rep.ArmSummary],
    args: argparse.Namespace,
    scale_rows: list[dict],
    trainer_rows: list[dict],
    started: datetime,
    elapsed_s: float,
) -> Path:
    """report.md, the plots and results.json under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    total = args.experiments
    rep.plot_curves(summaries, total, out / "best_vs_experiments.png")
    if scale_rows:
        rep.plot_throughput(
            [(r["agents"], r["per_hour"]) for r in scale_rows], out / "throughput.png"
        )
    surrogate = json.loads((LANDSCAPE / "surrogate.json").read_text(encoding="utf-8"))
    land, noise = surrogate["provenance"], surrogate["noise_sd"]
    rounds = land.get("probe_error") or []
    probe_note = (
        f"; {sum(r['probes'] for r in rounds)} runs probed where the surrogate was lowest, in "
        f"{len(rounds)} rounds, landed "
        + " → ".join(f"{r['rmse']:.3f}" for r in rounds)
        + " RMSE from the prediction round by round"
        if rounds
        else ""
    )
    by = {s.arm: s for s in summaries}
    lines = [
        "# What shared memory is worth: shared vs isolated vs single agents",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} (took {elapsed_s / 60:.1f} min)",
        f"- machine: {machine()}",
        f"- command: `{args.command}`",
        f"- task: landscape `{LANDSCAPE.relative_to(HERE.parent)}` — surrogate of "
        f"{land['runs']} real 3 s CPU runs of trainer/train.py ({land['finished']} finished, "
        f"{land['crashed']} diverged), noise sd {noise:.4f} from {land['replicates']} "
        f"replicates, 5-fold CV RMSE {land.get('cv_rmse', float('nan')):.4f}, best real run "
        f"{land.get('best_real', float('nan')):.4f}{probe_note}",
        f"- arms: {', '.join(s.arm for s in summaries)}; N = {args.agents} agents; "
        f"{total} experiments per arm in all; seeds {args.seeds}; builtin proposer; "
        "embedded memory (SQLite + local Chroma + MiniLM)",
        "- pre-proposal recall off: `SwarmConfig(recall=False)` (each agent recalls only its "
        "own traces; the duplicate refusal and claims stay shared)",
        "",
        "## Arms",
        "",
        rep.arms_table(summaries, total),
        "",
        "## Best val_bpb against experiments spent (median (p25–p75) over seeds)",
        "",
        rep.curve_table(summaries, total),
        "",
        "![best vs experiments](best_vs_experiments.png)",
        "",
        "## Platform overhead per experiment (everything but the run itself)",
        "",
        rep.overhead_table(summaries),
        "",
    ]
    if scale_rows:
        lines += [
            "## Experiments/hour against the number of agents sharing one memory (landscape)",
            "",
            rep._table(
                ["agents", "experiments", "experiments/hour", "overhead s/experiment (median)"],
                [
                    [
                        r["agents"],
                        r["experiments"],
                        rep._f(r["per_hour"], 0),
                        rep._f(r["overhead_median_s"], 3),
                    ]
                    for r in scale_rows
                ],
            ),
            "",
            "![throughput](throughput.png)",
            "",
        ]
    if trainer_rows:
        lines += [
            "## Real trainer: 1 agent vs 2 agents on this machine "
            f"(budget {trainer_rows[0]['budget']:g} s)",
            "",
            rep._table(
                ["agents", "experiments", "experiments/hour", "mean run s"],
                [
                    [
                        r["agents"],
                        r["experiments"],
                        rep._f(r["per_hour"], 1),
                        rep._f(r["mean_run_s"], 1),
                    ]
                    for r in trainer_rows
                ],
            ),
            "",
        ]
    lines += ["## Targets", "", _targets(by, total), ""]
    errors = [e for s in summaries for e in s.errors]
    if errors:
        lines += ["## Agent errors", ""] + [f"- {e}" for e in errors] + [""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps(
            {
                "command": args.command,
                "date": started.isoformat(),
                "arms": {
                    s.arm: {k: v for k, v in vars(s).items() if k != "arm"} for s in summaries
                },
                "scaling": scale_rows,
                "trainer": trainer_rows,
            },
            default=str,
        ),
        encoding="utf-8",
    )
    return path


def _targets(by: dict[str, rep.ArmSummary], total: int) -> str:
    rows = []
    shared, iso = by.get("shared"), by.get("isolated")
    if shared and iso:
        sh = [v if v is not None else float("inf") for v in shared.to_target]
        ratio = statistics.median(sh) / max(statistics.median([v or 0 for v in iso.to_target]), 1)
        med = statistics.median(sh)
        rows.append(
            [
                "shared reaches the isolated final best with <= 1/2 the experiments (median)",
                f"{'> ' + str(total) if med == float('inf') else f'{med:g}'} vs "
                f"{statistics.median([v or 0 for v in iso.to_target]):g} (ratio {ratio:.2f})",
                "met" if ratio <= 0.5 else "missed",
            ]
        )
    if shared:
        d = sum(shared.duplicates)
        rows.append(
            ["zero duplicate runs in the shared arm", str(d), "met" if d == 0 else "missed"]
        )
        o = m.Spread.of(shared.overheads).median
        rows.append(
            [
                "overhead per experiment <= 1 % of 300 s (3 s), shared arm median",
                f"{o:.3f} s ({100 * o / 300:.3f} %)",
                "met" if o <= 3 else "missed",
            ]
        )
    return rep._table(["target", "measured", "verdict"], rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--agents", type=int, default=8, help="N for the shared/isolated arms")
    p.add_argument("--experiments", type=int, default=80, help="total experiments per arm")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--arms", default=",".join(arms_mod.ARMS))
    p.add_argument("--scaling", default="1,2,4,8", help="agent counts for experiments/hour")
    p.add_argument("--scaling-experiments", type=int, default=6, help="per agent")
    p.add_argument(
        "--trainer-experiments",
        type=int,
        default=0,
        help="per agent, real trainer 1 vs 2 agents (0 = skip)",
    )
    p.add_argument("--trainer-budget", type=float, default=10.0)
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--keep", type=Path, default=None, help="keep memories/workspaces here")
    args = p.parse_args(argv)
    args.command = "python " + " ".join(
        shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]
    )
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    for a in arms:
        if a not in arms_mod.ARMS:
            p.error(f"--arms: unknown arm {a!r} (expected {', '.join(arms_mod.ARMS)})")
    if args.experiments % args.agents:
        p.error(f"--experiments {args.experiments} must divide by --agents {args.agents}")
    if args.seeds < 1:
        p.error("--seeds must be at least 1")
    counts = [int(c) for c in args.scaling.split(",") if c.strip()] if args.scaling else []
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("agents", "memory", "httpx", "chromadb", "optuna"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    work = arms_mod.scratch_dir(args.keep)
    try:
        runs = []
        for seed in range(args.seeds):
            for arm in arms:
                run = arms_mod.run_arm(arm, seed, LANDSCAPE, args.agents, args.experiments, work)
                log.info("seed %d %s: %d experiments", seed, arm, len(m.experiments(run.traces)))
                runs.append(run)
        summaries = summarise(runs, args.experiments, m.Metric(LANDSCAPE))
        scale_rows = scaling(counts, args.scaling_experiments, work) if counts else []
        trainer_rows = (
            trainer_throughput(args.trainer_experiments, args.trainer_budget, work)
            if args.trainer_experiments
            else []
        )
    finally:
        arms_mod.remove_scratch(work, args.keep)
    path = write_report(
        args.out, summaries, args, scale_rows, trainer_rows, started, time.perf_counter() - t0
    )
    print(path.read_text(encoding="utf-8"))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
