"""The yardstick: labswarm against one shared Optuna study and random search, on true values.

Runs every arm (``yardstick_arms.py``: the real labswarm swarm in several arms, one per
ablation switch among them; Optuna with N workers on one study, Optuna with one worker,
random search) on three landscapes
(``benchmarks/landscape``: smooth; ``landscape-crash``: a real divergence region inside the
search box; ``landscape-flat``: a constant plus noise), with the same total experiments,
the same search space and common random numbers, over many seeds; then writes
``benchmarks/results/report.md`` (tables, paired tests), ``true_vs_experiments.png`` and
``results.json``. Every finished arm-and-seed is appended to ``raw.jsonl`` first, so an
interrupted run resumes (``--resume``) and ``--report-only`` rebuilds the report from it.

Run from the repository root::

    python benchmarks/yardstick.py                 # defaults: N = 8, 80 experiments, 30 seeds
    python benchmarks/yardstick.py --quick         # 2 workers, 4 experiments, 2 seeds (tests)
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "landscape"))

import evaluate  # noqa: E402  (benchmarks/landscape)
import numpy as np  # noqa: E402
import yardstick_arms as arms_mod  # noqa: E402
import yardstick_measures as ym  # noqa: E402
import yardstick_report as rep  # noqa: E402

from agents.proposers.builtin import N_STARTUP_TRIALS  # noqa: E402

log = logging.getLogger("yardstick")

RESULTS = HERE / "results"
LANDSCAPES = {
    "smooth": HERE / "landscape",
    "crash": HERE / "landscape-crash",
    "flat": HERE / "landscape-flat",
}
TARGET_QUANTILE = 0.01  # the target: the true value 1 % of uniform draws of the box beat
TARGET_DRAWS = 20000
SHORT_BEST = 0.05  # fidelity_agreement: the share of the box a short-budget ranking puts first


def true_values(
    task_dir: Path, configs: list[dict[str, float]], budget: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free value and crash flag of each configuration, as evaluate.py computes them
    for a run at ``budget`` seconds (None: the task's own budget; another one needs the
    task's ``surrogate-<budget>s.json``, fitted to real runs at that budget), in chunks:
    the distance arrays of 20,000 points would take 400 MB at once."""
    name = evaluate.SURROGATE if budget is None else evaluate.budget_surrogate(budget)
    surrogate = evaluate.Surrogate.load(task_dir / name)
    variant = evaluate.read_variant(task_dir)
    refused = np.array([evaluate.refused_by_trainer(c) is not None for c in configs])
    if variant["kind"] == "flat":
        return np.full(len(configs), float(variant["value"])), refused
    means, crash = [], []
    for i in range(0, len(configs), 1000):
        x = surrogate.features(configs[i : i + 1000])
        means.append(surrogate.mean(x))
        crash.append(surrogate.crash_probability(x) > 0.5)
    return np.concatenate(means), refused | np.concatenate(crash)


def sample_box(task_dir: Path, n: int, seed: int = 0) -> list[dict[str, float]]:
    """``n`` uniform draws of the task's search space (log floats uniform in the log),
    rounded as proposals are, with the start values of knobs outside the space."""
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    task = arms_mod.load_task(task_dir)
    space = arms_mod.search_space(task)
    start = evaluate.read_knobs(task_dir / "knobs.py")
    rng = np.random.default_rng(seed)
    cols: dict[str, list[float]] = {}
    for name, dist in space.items():
        if isinstance(dist, FloatDistribution):
            lo, hi = dist.low, dist.high
            raw = (
                np.exp(rng.uniform(math.log(lo), math.log(hi), n))
                if dist.log
                else rng.uniform(lo, hi, n)
            )
            cols[name] = [float(arms_mod.round_value(float(v))) for v in raw]
        elif isinstance(dist, IntDistribution):
            steps = (dist.high - dist.low) // dist.step
            cols[name] = [float(dist.low + dist.step * k) for k in rng.integers(0, steps + 1, n)]
        elif isinstance(dist, CategoricalDistribution):
            cols[name] = [float(dist.choices[k]) for k in rng.integers(0, len(dist.choices), n)]
    return [{k: cols[k][i] if k in cols else float(start[k]) for k in start} for i in range(n)]


def fidelity_agreement(
    full: np.ndarray, short: np.ndarray, crashed: np.ndarray, target: float
) -> dict[str, float]:
    """How far runs at the short budget tell the full budget's values, over the box's
    draws that do not crash (lower is better at both budgets):

    - ``short_rank_corr``: Spearman's rank correlation of the two values;
    - ``short_best_at_target``: of the best ``SHORT_BEST`` share of draws by their short
      value (what a pack from a swarm at the short budget ranks first), the share whose
      full value reaches ``target``;
    - ``target_short_percentile``: the median, over the draws that reach ``target``, of
      the share of draws with a better short value (the multi-fidelity arm promotes the
      best third of its short runs: above 1/3, most of them would be screened out)."""
    from scipy.stats import spearmanr

    ok = ~crashed
    full, short = full[ok], short[ok]
    best_short = short <= np.quantile(short, SHORT_BEST)
    at_target = short[full <= target]
    ordered = np.sort(short)
    return {
        "short_rank_corr": float(spearmanr(full, short).statistic),
        "short_best_at_target": float(np.mean(full[best_short] <= target)),
        "target_short_percentile": float(
            np.median(np.searchsorted(ordered, at_target, side="left") / len(short))
        )
        if len(at_target)
        else math.nan,
    }


def fidelity_cell(fidelity: dict[str, float] | None) -> str:
    """The report's cell for :func:`fidelity_agreement` (n/a on a flat landscape)."""
    if fidelity is None:
        return "n/a (flat)"
    return (
        f"{fidelity['short_rank_corr']:.2f} / "
        f"{100 * fidelity['short_best_at_target']:.1f} % / "
        f"{100 * fidelity['target_short_percentile']:.0f} %"
    )


def landscape_facts(task_dir: Path) -> dict[str, Any]:
    """Start value, target, the box's crash share and how well short runs
    (``yardstick_arms.SHORT_BUDGET`` seconds) tell its values (:func:`fidelity_agreement`;
    None on a flat landscape): computed from the landscape and its search box alone,
    before any arm runs (the target is never tuned to the arms)."""
    start = evaluate.read_knobs(task_dir / "knobs.py")
    start_true, _ = true_values(task_dir, [start])
    draws = sample_box(task_dir, TARGET_DRAWS)
    values, crashed = true_values(task_dir, draws)
    flat = evaluate.read_variant(task_dir)["kind"] == "flat"
    ok = values[~crashed]
    target = None if flat else float(np.quantile(ok, TARGET_QUANTILE))
    fidelity = None
    if target is not None:
        short, _ = true_values(task_dir, draws, budget=arms_mod.SHORT_BUDGET)
        fidelity = fidelity_agreement(values, short, crashed, target)
    return {
        "start_true": float(start_true[0]),
        "target": target,
        "box_crash_share": float(crashed.mean()),
        "box_best": float(ok.min()),
        "box_median": float(np.median(ok)),
        "fidelity": fidelity,
    }


# -- raw results -----------------------------------------------------------------------


def to_json(a: arms_mod.ArmSeed) -> str:
    return json.dumps(asdict(a))


def from_json(line: str) -> arms_mod.ArmSeed:
    data = json.loads(line)
    data["runs"] = [arms_mod.Run(**r) for r in data["runs"]]
    return arms_mod.ArmSeed(**data)


def commands_file(raw: Path) -> Path:
    """The commands (with their start times) that appended to ``raw``."""
    return raw.with_suffix(".commands")


def recorded_commands(raw: Path) -> list[str]:
    path = commands_file(raw)
    if not path.exists():
        return ["(unknown)"]
    return [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def raw_file(path: Path) -> Path | None:
    """``path`` if it exists, else its gzipped copy ``path.gz`` (how the shipped results
    keep it small) if that does; ``path`` may name the ``.gz`` itself."""
    plain = path.with_name(path.name[:-3]) if path.name.endswith(".gz") else path
    for candidate in (plain, plain.with_name(plain.name + ".gz")):
        if candidate.exists():
            return candidate
    return None


def load_raw(path: Path) -> list[arms_mod.ArmSeed]:
    """The recorded arm-seeds of ``path`` or its ``.gz`` (:func:`raw_file`); none if
    neither exists."""
    import gzip

    found = raw_file(path)
    if found is None:
        return []
    data = found.read_bytes()
    text = (gzip.decompress(data) if found.name.endswith(".gz") else data).decode("utf-8")
    return [from_json(ln) for ln in text.splitlines() if ln.strip()]


# -- report ----------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.node()}: {cpu}, {os.cpu_count()} CPUs"


def versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for pkg in ("labswarm", "optuna", "numpy", "scipy"):
        try:
            parts.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{pkg} not installed")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=HERE, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        parts.append(f"commit {commit}{' + uncommitted changes' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        pass
    return ", ".join(parts)


def _to_target(arm_seeds: list[arms_mod.ArmSeed], target: float, total: int) -> float:
    """Median experiments to reach ``target`` (``yardstick_report.censored`` at ``total``)."""
    reach = rep.reach_values([ym.handed_curve(a, total) for a in arm_seeds], target)
    return float(np.median(rep.censored(reach, total)))


def goals(by_land: dict[str, dict[str, list[arms_mod.ArmSeed]]], facts: dict, total: int) -> str:
    """The targets of issues 12, 13 and 14, measured (never asserted)."""
    rows = []

    def shown(x: float) -> str:
        return f"> {total}" if x > total else f"{x:g}"

    for land, res in by_land.items():
        ra, rb, common = rep.paired_seeds(res, "labswarm-shared", "optuna-shared")
        if not common:
            continue
        ta = [ym.handed_curve(ra[s], total)[-1] for s in common]
        tb = [ym.handed_curve(rb[s], total)[-1] for s in common]
        p = ym.paired(ta, tb)
        if land == "crash":  # issue 14: better where failures must be learnt
            want = "better than"
            verdict = "met" if p.median_diff < 0 and p.p < 0.05 else "missed"
        else:  # met when labswarm's median is no worse; missed when the paired test says
            want = "at least as good as"  # it is worse; otherwise not shown either way
            verdict = (
                "met"
                if p.median_diff <= 0
                else "missed"
                if p.p < 0.05
                else "not shown (worse, not significant)"
            )
        rows.append(
            [
                f"labswarm-shared's true value after {total} {want} optuna-shared's "
                f"({land} landscape, paired)",
                f"{np.median(ta):.3f} vs {np.median(tb):.3f} (median difference "
                f"{p.median_diff:+.3f}, {p.a_better}/{p.b_better} seeds better/worse, "
                f"Wilcoxon p = {p.p:.2g}, {len(common)} seeds)",
                verdict + ("" if len(common) >= 30 else f" ({len(common)} < 30 seeds)"),
            ]
        )
        if land != "smooth":
            continue
        target = facts["smooth"]["target"]
        ma = _to_target([ra[s] for s in common], target, total)
        mb = _to_target([rb[s] for s in common], target, total)
        rows.append(
            [
                f"labswarm-shared reaches the target {target:.3f} in no more experiments (median)",
                f"{shown(ma)} vs {shown(mb)}",
                "met" if ma <= mb else "missed",
            ]
        )
    smooth = by_land.get("smooth", {})
    rt, ro, common = rep.paired_seeds(smooth, "labswarm-transfer", "optuna-shared")
    if common:
        target = facts["smooth"]["target"]
        mt = _to_target([rt[s] for s in common], target, total)
        mo = _to_target([ro[s] for s in common], target, total)
        rows.append(
            [
                f"with a pack of an earlier swarm at {arms_mod.PRIOR_BUDGET:g} s per run, "
                f"labswarm reaches the target {target:.3f} in ≤ 0.5× the experiments of a cold "
                "optuna-shared (median; the pack's runs scored by the surrogate of real "
                f"{arms_mod.PRIOR_BUDGET:g} s runs)",
                f"{shown(mt)} vs {shown(mo)} ({len(common)} seeds)",
                "met" if mt <= 0.5 * mo else "missed",
            ]
        )
    rm, rs, common = rep.paired_seeds(smooth, "labswarm-multifidelity", "labswarm-shared")
    if common:
        target = facts["smooth"]["target"]
        limit = rep.device_budget(smooth, total)
        spent = {
            arm: float(np.median(rep.seconds_to_target([r[s] for s in common], target, limit)))
            for arm, r in (("multi", rm), ("shared", rs))
        }

        def secs(x: float) -> str:
            return f"> {limit:g}" if x > limit else f"{x:g}"

        rows.append(
            [
                f"with multi-fidelity on (short runs of {arms_mod.SHORT_BUDGET:g} s, the best "
                "third promoted), labswarm reaches the target "
                f"{target:.3f} in ≤ 0.5× the device-seconds of labswarm-shared (median, "
                f"within {limit:g} device-s)",
                f"{secs(spent['multi'])} vs {secs(spent['shared'])} device-s ({len(common)} seeds)",
                "met" if spent["multi"] <= 0.5 * spent["shared"] else "missed",
            ]
        )
    flat = by_land.get("flat", {}).get("labswarm-shared", [])
    if flat:
        judged = [ym.judge_errors(a) for a in flat]
        fk = sum(j[1] for j in judged if j)
        n = sum(len(a.experiments) for a in flat)
        share = ym.fraction(fk, n)
        rows.append(
            [
                "false keeps on the flat landscape ≤ 5 % of experiments (labswarm-shared)",
                f"{fk}/{n} = {100 * share:.1f} %",
                "met" if share <= 0.05 else "missed",
            ]
        )
        # Nothing on the flat landscape is better than the start: a champion whose mean is
        # below the start's by more than the noise (one-sided 5 %, the landscape's own noise
        # sd) is a gain claimed on noise alone; a champion other than the start at all is
        # shown beside it.
        sd = json.loads((LANDSCAPES["flat"] / "surrogate.json").read_text("utf-8"))["noise_sd"]
        z = statistics.NormalDist().inv_cdf(0.95)
        claims = [ym.claimed_gain(a, total) for a in flat]
        beyond = sum(1 for c in claims if c and c[0] > z * sd * math.sqrt(1 / c[1] + 1 / c[2]))
        held = ym.fraction(len(flat) - beyond, len(flat))
        root_kept = sum(
            1 for a in flat if (c := ym.final_candidate(a, total)) is None or c.baseline
        )
        rows.append(
            [
                f"flat landscape: the champion after {total} experiments is not better than "
                "the start beyond noise in ≥ 95 % of seeds (labswarm-shared)",
                f"{len(flat) - beyond}/{len(flat)} = {100 * held:.0f} % (the champion is the "
                f"start itself in {root_kept}/{len(flat)})",
                "met" if held >= 0.95 else "missed",
            ]
        )
    dups = [
        (land, arm, sum(ym.duplicate_runs(a) for a in res.get(arm, [])))
        for land, res in by_land.items()
        for arm in (*arms_mod.SHARED_MEMORY_ARMS, "optuna-shared")
        if res.get(arm)
    ]
    if dups:
        total_dups = sum(d for _, _, d in dups)
        rows.append(
            [
                "0 duplicate runs in shared arms",
                "; ".join(f"{land} {arm}: {d}" for land, arm, d in dups),
                "met" if total_dups == 0 else "missed",
            ]
        )
    return rep.table(["goal (issues 12, 13, 14)", "measured", "verdict"], rows)


def write_report(
    out: Path,
    raw: list[arms_mod.ArmSeed],
    facts: dict[str, dict[str, Any]],
    args: argparse.Namespace,
    started: datetime,
    elapsed_s: float,
) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    total = args.experiments
    arms = args.arm_list
    by_land: dict[str, dict[str, list[arms_mod.ArmSeed]]] = {}
    for a in raw:
        by_land.setdefault(a.landscape, {}).setdefault(a.arm, []).append(a)
    for res in by_land.values():
        for lst in res.values():
            lst.sort(key=lambda a: a.seed)
    lands = [name for name in LANDSCAPES if name in by_land]
    surrogate = json.loads((LANDSCAPES["smooth"] / "surrogate.json").read_text(encoding="utf-8"))
    prov = surrogate["provenance"]
    seeds_run = {land: {arm: len(by_land[land].get(arm, [])) for arm in arms} for land in lands}
    pack = ", the transfer arm's pack" if arms_mod.PRIOR_BUDGET == arms_mod.SHORT_BUDGET else ""
    lines = [
        "# The yardstick: labswarm vs one shared Optuna study vs random search, on true values",
        "",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} (this invocation took "
        f"{elapsed_s / 60:.1f} min)",
        f"- machine: {machine()}",
        f"- versions: {versions()}",
        f"- command: `{args.command}`",
        "- the runs were recorded by: " + "; ".join(f"`{c}`" for c in recorded_commands(args.raw)),
        f"- arms: {', '.join(arms)}; N = {args.workers} workers (agents) per parallel arm; "
        f"{total} experiments per arm and seed in all (labswarm's replicates of its root are "
        "not counted; its confirmation, re-measure, finalists' and prior replicate runs "
        "are); the search space is the task's, "
        "from labswarm's builtin `search_space`; Optuna arms use "
        "`TPESampler(constant_liar=True, multivariate=True, "
        f"n_startup_trials={N_STARTUP_TRIALS})` (random: `RandomSampler`) with one "
        "`load_study` per worker thread on one journal file, and run the same evaluator "
        "subprocess with the same environment as labswarm's runs",
        "- memory embedder of the labswarm arms: "
        + (
            "as the recorded commands say (`--embedder`; without it, the default MiniLM)"
            if args.report_only
            else args.embedder or "the default (MiniLM unless LABSWARM_EMBEDDER says otherwise)"
        )
        + " "
        "(the builtin proposer never reads semantic hits, so the embedder cannot change a "
        "decision; it changes the overhead)",
        "- common random numbers: a run's noise depends only on the seed, the configuration "
        "and how many times it ran before in that arm and seed",
        "- seeds that ran: "
        + "; ".join(
            f"{land}: " + ", ".join(f"{arm} {n}" for arm, n in seeds_run[land].items())
            for land in lands
        ),
        f"- the surrogate: {prov['runs']} real 3 s CPU runs of trainer/train.py "
        f"({prov['crashed']} diverged), noise sd {surrogate['noise_sd']:.4f}, 5-fold CV RMSE "
        f"{prov.get('cv_rmse', float('nan')):.3f}; 'true value' is its noise-free mean, "
        "true only inside this benchmark",
        "",
        "## Landscapes and targets (computed before any arm ran)",
        "",
        f"The target of each landscape is the true value that {100 * TARGET_QUANTILE:g} % of "
        f"{TARGET_DRAWS} uniform random configurations of its search box (seed 0) beat: a "
        "property of the landscape and its box only, never of the arms' results.",
        "",
        rep.table(
            [
                "landscape",
                "task",
                "start true value",
                "target",
                "box: crash share",
                "box: median / best true value",
                f"box: {arms_mod.SHORT_BUDGET:g} s runs against {arms_mod.LANDSCAPE_BUDGET:g} s: "
                f"rank correlation / best {100 * SHORT_BEST:g} % at {arms_mod.SHORT_BUDGET:g} s "
                "reaching the target / target's percentile",
            ],
            [
                [
                    land,
                    f"`{LANDSCAPES[land].relative_to(HERE.parent)}`",
                    f"{facts[land]['start_true']:.3f}",
                    rep.f(facts[land]["target"]),
                    f"{100 * facts[land]['box_crash_share']:.1f} %",
                    f"{facts[land]['box_median']:.3f} / {facts[land]['box_best']:.3f}",
                    fidelity_cell(facts[land]["fidelity"]),
                ]
                for land in lands
            ],
        ),
        "",
        f"The last column says how well a run at {arms_mod.SHORT_BUDGET:g} s (the "
        f"multi-fidelity arm's short runs{pack}) tells a configuration's "
        f"value at {arms_mod.LANDSCAPE_BUDGET:g} s, over the same draws of the box: Spearman's "
        "rank correlation; of the draws a short-budget ranking puts in its best "
        f"{100 * SHORT_BEST:g} %, the share that reaches the target (of all draws: "
        f"{100 * TARGET_QUANTILE:g} %, by the target's definition); and for the draws that "
        "reach the target, the median share of the box that scores better than them at the "
        "short budget (the multi-fidelity arm promotes the best third).",
        "",
        "## Goals (issues 12, 13 and 14; measured, never asserted)",
        "",
        goals(by_land, facts, total),
        "",
        "![true value vs experiments](true_vs_experiments.png)",
        "",
    ]
    for land in lands:
        metric = ym.Metric(LANDSCAPES[land])
        lines += [
            f"## Landscape `{land}`",
            "",
            rep.arm_tables(arms, by_land[land], total, facts[land]["target"], metric),
            "",
            rep.seconds_tables(arms, by_land[land], total, facts[land]["target"]),
            "",
            "#### Paired tests across seeds (Wilcoxon signed-rank, two-sided)",
            "",
            rep.paired_table(by_land[land], total, facts[land]["target"]),
            "",
            rep.per_configuration_table(arms, by_land[land], total),
            "",
            rep.funnel_table(arms, by_land[land], total),
            "",
            rep.fate_table(arms, by_land[land], total),
            "",
            rep.leader_table(arms, by_land[land], total, facts[land]["target"]),
            "",
        ]
    errors = [(a.landscape, a.arm, a.seed, e) for a in raw for e in a.errors]
    mismatch = [
        (a.landscape, a.arm, a.seed)
        for a in raw
        if a.arm in (*arms_mod.SHARED_MEMORY_ARMS, "labswarm-single")
        and (c := ym.final_candidate(a, len(a.experiments))) is not None
        and a.champion_id is not None
        and not ym.same_program(a, c.id, a.champion_id)
    ]
    lines += [
        "## Checks",
        "",
        f"- labswarm's champion as memory names it (`Store.champion`) equals the configuration "
        f"this report hands over in every single-memory labswarm arm and seed: "
        f"{'yes' if not mismatch else 'NO: ' + ', '.join(map(str, mismatch))}",
        f"- worker/agent errors: {len(errors)}",
        "",
    ]
    lines += [f"  - {land} {arm} seed {seed}: {e}" for land, arm, seed, e in errors[:50]]
    rep.plot(
        [(land, by_land[land], facts[land]["target"]) for land in lands],
        arms,
        total,
        out / "true_vs_experiments.png",
    )
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary: dict[str, Any] = {"command": args.command, "date": started.isoformat()}
    summary["landscapes"] = facts
    summary["arms"] = {
        land: {
            arm: {
                "seeds": [a.seed for a in lst],
                "handed_true_final": [ym.handed_curve(a, total)[-1] for a in lst],
                "best_observed": [ym.best_observed(a, total) for a in lst],
                "best_true_run": [ym.best_true_run(a, total) for a in lst],
                "configurations_tried": [ym.configurations_tried(a, total) for a in lst],
                "handover_lags": [ym.handover_lags(a, total) for a in lst],
                "experiments": [len(a.experiments) for a in lst],
                "device_seconds": [ym.device_seconds(a)[-1] for a in lst],
                "duplicates": [ym.duplicate_runs(a) for a in lst],
                "crashes": [ym.crashes(a) for a in lst],
                "judge": [ym.judge_errors(a) for a in lst],
            }
            for arm, lst in res.items()
        }
        for land, res in by_land.items()
    }
    (out / "results.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return path


# -- main ------------------------------------------------------------------------------


def _record(a: arms_mod.ArmSeed, args: argparse.Namespace) -> None:
    log.info(
        "%s %s seed %d: %d experiments, handed true %.3f, %.1f s",
        a.landscape,
        a.arm,
        a.seed,
        len(a.experiments),
        ym.handed_curve(a, args.experiments)[-1],
        a.wall_s,
    )
    with args.raw.open("a", encoding="utf-8") as fh:
        fh.write(to_json(a) + "\n")


def run_all(
    todo: list[tuple[str, str, int]], args: argparse.Namespace, facts: dict, work: Path
) -> None:
    """Run every (landscape, arm, seed), ``--jobs`` at a time (separate processes)."""

    def job(land: str, arm: str, seed: int) -> tuple[Any, ...]:
        return (
            arm,
            land,
            LANDSCAPES[land],
            seed,
            args.workers,
            args.experiments,
            work,
            facts[land]["start_true"],
            args.embedder,
            args.pack_experiments,
        )

    if args.jobs == 1:
        for item in todo:
            _record(arms_mod.run_arm(*job(*item)), args)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        futures = [pool.submit(arms_mod.run_arm, *job(*item)) for item in todo]
        for fut in as_completed(futures):
            _record(fut.result(), args)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workers", type=int, default=8, help="N: agents / Optuna workers")
    p.add_argument("--experiments", type=int, default=80, help="total experiments per arm")
    p.add_argument("--seeds", type=int, default=30, help="seeds per landscape")
    p.add_argument(
        "--pack-experiments",
        type=int,
        default=None,
        help="total experiments of the earlier swarm whose pack labswarm-transfer imports "
        "(default: half of --experiments), so a smaller plan can keep the report's pack",
    )
    p.add_argument(
        "--landscape-seeds",
        default="",
        help="per-landscape seed counts overriding --seeds, e.g. crash=10,flat=10",
    )
    p.add_argument("--landscapes", default=",".join(LANDSCAPES))
    p.add_argument(
        "--arms",
        default=",".join(arms_mod.ARMS),
        help=f"comma-separated arms (default: all of {', '.join(arms_mod.ARMS)}; "
        "yardstick_arms.py and docs/benchmarks.md say what each runs)",
    )
    p.add_argument("--embedder", default=None, help="labswarm memory embedder (minilm | hash)")
    p.add_argument("--jobs", type=int, default=1, help="arm-seeds run at once (processes)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="2 workers, 4 experiments, 2 seeds, hash embedder unless --embedder (tests)",
    )
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--raw", type=Path, default=None, help="default: OUT/raw.jsonl")
    p.add_argument("--resume", action="store_true", help="skip arm-seeds already in --raw")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from --raw")
    p.add_argument("--keep", type=Path, default=None, help="keep workspaces/memories here")
    args = p.parse_args(argv)
    args.command = "python " + " ".join(
        shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])]
    )
    if args.quick:
        args.workers, args.experiments, args.seeds = 2, 4, 2
        args.embedder = args.embedder or "hash"
    args.arm_list = [a.strip() for a in args.arms.split(",") if a.strip()]
    for a in args.arm_list:
        if a not in arms_mod.ARMS:
            p.error(f"--arms: unknown arm {a!r} (expected {', '.join(arms_mod.ARMS)})")
    args.land_list = [x.strip() for x in args.landscapes.split(",") if x.strip()]
    for x in args.land_list:
        if x not in LANDSCAPES:
            p.error(f"--landscapes: unknown landscape {x!r} (expected {', '.join(LANDSCAPES)})")
    if min(args.workers, args.experiments, args.seeds, args.jobs) < 1:
        p.error("--workers, --experiments, --seeds and --jobs must be at least 1")
    if args.experiments % args.workers:
        p.error(f"--experiments {args.experiments} must divide by --workers {args.workers}")
    pack = args.pack_experiments
    if pack is not None and (pack < args.workers or pack % args.workers):
        p.error(
            f"--pack-experiments {pack} must be a positive multiple of --workers {args.workers}"
        )
    args.seed_counts = {x: args.seeds for x in args.land_list}
    for item in filter(None, (s.strip() for s in args.landscape_seeds.split(","))):
        name, _, count = item.partition("=")
        if name not in args.seed_counts or not count.isdigit():
            p.error(f"--landscape-seeds: {item!r} is not LANDSCAPE=COUNT for a chosen landscape")
        args.seed_counts[name] = int(count)
    args.raw = args.raw or args.out / "raw.jsonl"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("agents", "memory", "httpx", "chromadb", "optuna", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = datetime.now(UTC)
    t0 = time.perf_counter()
    facts = {land: landscape_facts(LANDSCAPES[land]) for land in args.land_list}
    for land, fa in facts.items():
        log.info("landscape %s: %s", land, fa)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        gz = args.raw.with_name(args.raw.name + ".gz")
        if not args.resume:
            args.raw.unlink(missing_ok=True)
            gz.unlink(missing_ok=True)
            commands_file(args.raw).unlink(missing_ok=True)
        elif gz.exists() and not args.raw.exists():  # continue the shipped, gzipped data
            import gzip

            args.raw.write_bytes(gzip.decompress(gz.read_bytes()))
        with commands_file(args.raw).open("a", encoding="utf-8") as fh:
            fh.write(f"{started.strftime('%Y-%m-%d %H:%M UTC')}: {args.command}\n")
        done = {(a.landscape, a.arm, a.seed) for a in load_raw(args.raw)}
        work = args.keep or Path(tempfile.mkdtemp(prefix="labswarm_yardstick_"))
        work.mkdir(parents=True, exist_ok=True)
        todo = [
            (land, arm, seed)
            for seed in range(max(args.seed_counts.values()))
            for land in args.land_list
            if seed < args.seed_counts[land]
            for arm in args.arm_list
            if (land, arm, seed) not in done
        ]
        try:
            run_all(todo, args, facts, work)
        finally:
            if args.keep is None:
                shutil.rmtree(work, ignore_errors=True)
    raw = [
        a for a in load_raw(args.raw) if a.landscape in args.land_list and a.arm in args.arm_list
    ]
    path = write_report(args.out, raw, facts, args, started, time.perf_counter() - t0)
    print(path.read_text(encoding="utf-8"))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
