"""Tables and plots of the yardstick: ``benchmarks/results/report.md``."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yardstick_measures as ym
from yardstick_arms import LANDSCAPE_BUDGET, ArmSeed

from memory.models import MIN_CHAMPION_RUNS

# Pairs compared seed by seed (a vs b; a negative difference means a is better).
PAIRS = (
    ("labswarm-shared", "optuna-shared"),
    ("labswarm-shared", "random"),
    ("labswarm-shared", "labswarm-neighbour"),
    ("labswarm-neighbour", "optuna-shared"),
    ("labswarm-transfer", "optuna-shared"),
    ("labswarm-transfer", "labswarm-shared"),
    ("labswarm-multifidelity", "labswarm-shared"),
    ("labswarm-multifidelity", "optuna-shared"),
    ("labswarm-shared", "labswarm-isolated"),
    ("labswarm-shared", "labswarm-single"),
    ("labswarm-shared", "labswarm-no-recall"),
    ("labswarm-shared", "labswarm-no-confirm"),
    ("labswarm-one-run-keep", "labswarm-shared"),
    ("labswarm-one-run-keep", "optuna-shared"),
    ("labswarm-shared", "labswarm-no-semantic-recall"),
    ("labswarm-shared", "labswarm-no-near-dup"),
    ("labswarm-shared", "labswarm-no-insights"),
    ("labswarm-shared", "labswarm-no-champion-following"),
    ("optuna-shared", "optuna-sequential"),
    ("optuna-shared", "random"),
)


def f(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def checkpoints(total: int) -> list[int]:
    """10/20/40/80 at 80 experiments; the same fractions of any other total."""
    return sorted({max(1, round(total * q)) for q in (0.125, 0.25, 0.5, 1.0)})


def summary_cell(s: ym.Summary, digits: int = 3) -> str:
    if s.n == 0:
        return "n/a"
    return (
        f"{f(s.median, digits)} [{f(s.lo, digits)}, {f(s.hi, digits)}] "
        f"({f(s.p25, digits)}–{f(s.p75, digits)})"
    )


def reach_values(curves: Sequence[Sequence[float]], target: float) -> list[int | None]:
    return [ym.experiments_to_reach(c, target) for c in curves]


def censored(values: Sequence[float | None], limit: float) -> list[float]:
    """Experiments (or device-seconds) to reach a target, a seed that never reached it
    within ``limit`` counted as ``limit + 1``: the one rule of every median and paired test
    of them."""
    return [v if v is not None else limit + 1 for v in values]


def arms_that_ran(
    arms: Sequence[str], results: dict[str, list[ArmSeed]]
) -> Iterator[tuple[str, list[ArmSeed]]]:
    """Each arm of ``arms``, in order, with its arm-seeds; arms without any are left out
    (a table has no row for them)."""
    for arm in arms:
        seeds = results.get(arm, [])
        if seeds:
            yield arm, seeds


def paired_seeds(
    results: dict[str, list[ArmSeed]], a: str, b: str
) -> tuple[dict[int, ArmSeed], dict[int, ArmSeed], list[int]]:
    """Arm-seeds of arms ``a`` and ``b`` by seed, and the seeds both ran (in order): what
    every paired comparison is made over."""
    ra = {x.seed: x for x in results.get(a, [])}
    rb = {x.seed: x for x in results.get(b, [])}
    return ra, rb, sorted(set(ra) & set(rb))


def reach_cell(values: Sequence[int | None], total: int) -> str:
    if not values:
        return "n/a"
    s = ym.Summary.of(censored(values, total))
    reached = sum(v is not None for v in values)

    def shown(x: float) -> str:
        return f"> {total}" if x > total else f"{x:g}"

    return f"{shown(s.median)} [{shown(s.lo)}, {shown(s.hi)}] (reached {reached}/{len(values)})"


def remeasure_cell(counts: Sequence[tuple[int, int]]) -> str:
    """Re-measure runs over seeds, and those of programs the arm never handed over."""
    runs, never = sum(c[0] for c in counts), sum(c[1] for c in counts)
    return "— (none)" if runs == 0 else f"{never} of {runs}"


def arm_tables(
    arms: Sequence[str],
    results: dict[str, list[ArmSeed]],
    total: int,
    target: float | None,
    metric: ym.Metric,
) -> str:
    """The per-landscape tables: handed true value, reach, judge, waste, cost."""
    ks = checkpoints(total)
    true_rows, reach_rows, judge_rows, cost_rows = [], [], [], []
    for arm, seeds in arms_that_ran(arms, results):
        curves = [ym.handed_curve(a, total) for a in seeds]
        true_rows.append(
            [arm, len(seeds)] + [summary_cell(ym.Summary.of([c[k] for c in curves])) for k in ks]
        )
        reach = (
            reach_cell(reach_values(curves, target), total)
            if target is not None
            else "n/a (flat: every configuration is at the target)"
        )
        observed = ym.Summary.of([ym.best_observed(a, total) for a in seeds])
        found = ym.Summary.of([ym.best_true_run(a, total) for a in seeds])
        tried = ym.Summary.of([ym.configurations_tried(a, total) for a in seeds])
        lags = [lag for a in seeds for lag in ym.handover_lags(a, total)]
        lag = f"{statistics.median(lags):g} ({len(lags)} hand-overs)" if lags else "— (none)"
        reach_rows.append(
            [arm, reach, summary_cell(found), f(tried.median, 1), lag, summary_cell(observed)]
        )
        n_exp = sum(len(a.experiments) for a in seeds)
        judged = [ym.judge_errors(a) for a in seeds]
        if all(j is None for j in judged):
            keeps = false = missed = "— (no judge)"
        else:
            k = sum(j[0] for j in judged if j)
            fk = sum(j[1] for j in judged if j)
            mg = sum(j[2] for j in judged if j)
            keeps = str(k)
            false = f"{fk} ({100 * ym.fraction(fk, n_exp):.1f} % of experiments)"
            missed = str(mg)
        judge_rows.append(
            [
                arm,
                f"{n_exp / len(seeds):.1f}",
                sum(1 for a in seeds for r in a.experiments if r.retest),
                remeasure_cell([ym.wasted_remeasures(a, total) for a in seeds]),
                keeps,
                false,
                missed,
                sum(ym.duplicate_runs(a) for a in seeds),
                sum(ym.failed_region_runs(a, metric) for a in seeds),
                sum(ym.crashes(a) for a in seeds),
            ]
        )
        gaps = ym.Summary.of([g for a in seeds for g in ym.overheads(a)])
        per_hour = ym.Summary.of([ym.experiments_per_hour(a) for a in seeds])
        wall = ym.Summary.of([a.wall_s for a in seeds])
        cost_rows.append([arm, summary_cell(gaps), summary_cell(per_hour, 0), f(wall.median, 1)])
    target_text = f"{target:.3f}" if target is not None else "n/a"
    return "\n".join(
        [
            "#### True value of the configuration handed to the user, after k experiments",
            "",
            "median [bootstrap 95 % CI of the median] (p25–p75) over seeds; lower is better",
            "",
            table(["arm", "seeds"] + [f"after {k}" for k in ks], true_rows),
            "",
            f"#### Experiments to reach the target true value {target_text}; best observed",
            "",
            "median [95 % CI] of the experiments at which the handed configuration's true "
            "value first reaches the target (a seed that never does counts as more than "
            f"{total}); best true value run: the best configuration the arm ran in {total} "
            "experiments, whether or not it hands it over (the search alone; the gap to the "
            "handed value is what recognising the best costs); configurations tried: distinct "
            f"configurations among the {total}, re-tests not counted (median); hand-over "
            "lag: the experiments from a handed program's first run to its hand-over, median "
            "over every hand-over of every seed (Optuna: 0 by construction); best observed "
            f"metric after {total}: BIASED low (the minimum of noisy draws), shown for "
            "comparison with earlier reports only",
            "",
            table(
                [
                    "arm",
                    "experiments to reach the target",
                    f"best true value run in {total}",
                    "configurations tried",
                    "hand-over lag",
                    f"best observed after {total} (biased)",
                ],
                reach_rows,
            ),
            "",
            "#### Judge and waste (totals over seeds)",
            "",
            table(
                [
                    "arm",
                    "experiments/seed",
                    "of them re-tests (confirmations, re-measures)",
                    "re-measures: of programs never picked",
                    "keeps",
                    "false keeps",
                    "missed gains",
                    "duplicate runs",
                    "runs inside already-failed regions",
                    "crashes",
                ],
                judge_rows,
            ),
            "",
            "#### Cost",
            "",
            table(
                [
                    "arm",
                    "overhead s/experiment, median [CI] (p25–p75)",
                    "experiments/hour, median [CI] (p25–p75)",
                    "wall s per seed, median",
                ],
                cost_rows,
            ),
        ]
    )


def device_budget(results: dict[str, list[ArmSeed]], total: int) -> float:
    """The device-seconds every arm can be compared at: ``total`` runs at the task's
    budget (what every arm without short runs spends in ``total`` experiments)."""
    budgets = {a.budget for seeds in results.values() for a in seeds}
    return total * (max(budgets) if budgets else LANDSCAPE_BUDGET)


def seconds_to_target(seeds: Sequence[ArmSeed], target: float, limit: float) -> list[float]:
    """Device-seconds each arm-seed took to reach ``target`` (:func:`censored` at ``limit``)."""
    return censored([ym.seconds_to_reach(a, target, limit) for a in seeds], limit)


def seconds_tables(
    arms: Sequence[str], results: dict[str, list[ArmSeed]], total: int, target: float | None
) -> str:
    """Each arm at equal device-seconds: what it hands over after a quarter, a half and
    all of ``device_budget``, and the device-seconds it needs to reach the target; the
    multi-fidelity arm paired with labswarm-shared and optuna-shared at equal device time."""
    limit = device_budget(results, total)
    marks = [limit / 4, limit / 2, limit]
    rows = []
    for arm, seeds in arms_that_ran(arms, results):
        cells = []
        for mark in marks:
            values = [ym.handed_curve(a, ym.within_seconds(a, mark))[-1] for a in seeds]
            cells.append(summary_cell(ym.Summary.of(values)))
        per = [ym.device_seconds(a)[-1] / len(a.experiments) for a in seeds if a.experiments]
        if target is None:
            reach = "n/a (flat)"
        else:
            spent = seconds_to_target(seeds, target, limit)
            s = ym.Summary.of(spent)
            got = sum(v <= limit for v in spent)

            def shown(x: float) -> str:
                return f"> {limit:g}" if x > limit else f"{x:g}"

            reach = f"{shown(s.median)} [{shown(s.lo)}, {shown(s.hi)}] (reached {got}/{len(spent)})"
        rows.append([arm, len(seeds), f"{statistics.fmean(per):.2f}", *cells, reach])
    pairs = []
    for a, b in (
        ("labswarm-multifidelity", "labswarm-shared"),
        ("labswarm-multifidelity", "optuna-shared"),
    ):
        ra, rb, common = paired_seeds(results, a, b)
        if not common:
            continue
        va = [ym.handed_curve(ra[s], ym.within_seconds(ra[s], limit))[-1] for s in common]
        vb = [ym.handed_curve(rb[s], ym.within_seconds(rb[s], limit))[-1] for s in common]
        pt = ym.paired(va, vb)
        row = [
            f"{a} − {b}",
            pt.n,
            f"{pt.median_diff:+.3f}",
            f"{pt.a_better}/{pt.b_better}",
            f"{pt.p:.2g}",
        ]
        if target is not None:
            sa = seconds_to_target([ra[s] for s in common], target, limit)
            sb = seconds_to_target([rb[s] for s in common], target, limit)
            ps = ym.paired(sa, sb)
            row += [
                f"{ps.median_diff:+g}",
                f"{ps.a_better}/{ps.b_better}",
                f"{ps.p:.2g}",
                f"{statistics.median(sa) / statistics.median(sb):.2f}",
            ]
        else:
            row += ["n/a (flat)"] * 4
        pairs.append(row)
    out = [
        f"#### At equal device-seconds (up to {limit:g}: {total} runs at the task's budget)",
        "",
        "true value handed over after the experiments that fit in the device-seconds shown "
        "(median [CI] (p25–p75)); device-seconds to reach the target (median [CI]; a seed "
        f"that never does counts as more than {limit:g}); a short run costs its own budget",
        "",
        table(
            ["arm", "seeds", "device-s per experiment"]
            + [f"after {m:g} device-s" for m in marks]
            + ["device-s to reach the target"],
            rows,
        ),
    ]
    if pairs:
        out += [
            "",
            table(
                [
                    "a − b (paired, equal device-seconds)",
                    "seeds",
                    f"true value after {limit:g} device-s: median difference",
                    "seeds a better / b better",
                    "Wilcoxon p",
                    "device-s to target: median difference",
                    "seeds a sooner / b sooner",
                    "Wilcoxon p",
                    "ratio of medians a / b",
                ],
                pairs,
            ),
        ]
    return "\n".join(out)


def per_configuration_table(
    arms: Sequence[str], results: dict[str, list[ArmSeed]], total: int
) -> str:
    """Each arm's search per configuration, paired with labswarm-shared: on each seed, the
    best true value among the arm's first K distinct configurations, K = the number
    labswarm-shared tried in ``total`` experiments on that seed -- so an arm that spends
    no experiment on re-tests is not credited with the configurations it could afford."""
    rows = []
    for arm in arms:
        if arm == "labswarm-shared":
            continue
        ra, rb, common = paired_seeds(results, arm, "labswarm-shared")
        if not common:
            continue
        tried = [ym.configurations_tried(rb[s], total) for s in common]
        va = [ym.best_true_of_first(ra[s], k) for s, k in zip(common, tried, strict=True)]
        vb = [ym.best_true_run(rb[s], total) for s in common]
        pt = ym.paired(va, vb)
        rows.append(
            [
                f"{arm} − labswarm-shared",
                pt.n,
                f"{statistics.median(tried):g}",
                f"{statistics.median(va):.3f} vs {statistics.median(vb):.3f}",
                f"{pt.median_diff:+.3f}",
                f"{pt.a_better}/{pt.b_better}",
                f"{pt.p:.2g}",
            ]
        )
    if not rows:
        return ""
    return "\n".join(
        [
            "#### Search per configuration (paired with labswarm-shared)",
            "",
            "best true value among each arm's first K distinct configurations, K = the number "
            f"labswarm-shared tried in {total} experiments on the same seed (its re-tests "
            "not counted); the difference that is left is the sampler's, not the budget's",
            "",
            table(
                [
                    "a − labswarm-shared",
                    "seeds",
                    "K (median)",
                    "best true value among K: medians a vs labswarm-shared",
                    "median difference",
                    "seeds a better / labswarm-shared better",
                    "Wilcoxon p",
                ],
                rows,
            ),
        ]
    )


def funnel_table(arms: Sequence[str], results: dict[str, list[ArmSeed]], total: int) -> str:
    """Where each arm loses true value between its search and its hand-over after ``total``
    experiments (``ym.funnel``): medians over seeds of the best true value at each stage,
    and of each seed's loss from the best it ran to what it hands over."""
    rows = []
    for arm, seeds in arms_that_ran(arms, results):
        stages = [ym.funnel(a, total) for a in seeds]
        cells = [statistics.median(getattr(x, name) for x in stages) for name in ym.Funnel._fields]
        lost = statistics.median(x.handed - x.ran for x in stages)
        rows.append([arm, len(seeds), *(f(c) for c in cells), f"{lost:+.3f}"])
    if not rows:
        return ""
    return "\n".join(
        [
            f"#### Where the true value is lost between search and hand-over, after {total}",
            "",
            "median over seeds of the best true value among the programs that reached each "
            "stage: ran; kept (a trusted keep: the keep rule passed it); measured (a contender "
            f"of the champion rule: {MIN_CHAMPION_RUNS} or more kept runs that no verdict "
            "chose; Optuna: any finished trial); handed over. Last column: the median of each "
            "seed's handed value minus the best it ran (what recognising the best cost)",
            "",
            table(
                ["arm", "seeds", "ran", "kept", "measured", "handed", "lost: handed − ran"], rows
            ),
        ]
    )


def leader_table(
    arms: Sequence[str], results: dict[str, list[ArmSeed]], total: int, target: float | None
) -> str:
    """What a person watching sees beside the champion (``ym.leader_curve``): the leader's
    true value after k experiments and the experiments until it reaches the target."""
    ks = checkpoints(total)
    rows = []
    for arm, seeds in arms_that_ran(arms, results):
        curves = [ym.leader_curve(a, total) for a in seeds]
        reach = (
            reach_cell(reach_values(curves, target), total)
            if target is not None
            else "n/a (flat: every configuration is at the target)"
        )
        rows.append(
            [arm, len(seeds)]
            + [summary_cell(ym.Summary.of([c[k] for c in curves])) for k in ks]
            + [reach]
        )
    if not rows:
        return ""
    return "\n".join(
        [
            "#### The leader: what a person watching sees beside the champion, after k experiments",
            "",
            "true value of the program `Store.leader` names (the best mean over its measured "
            "runs however few; unconfirmed: one lucky run can lead), median [CI] (p25–p75) "
            "over seeds, and the experiments until it first reaches the target; for Optuna "
            "arms their pick (the best trial is both). Not what an arm hands over: see the "
            "first table",
            "",
            table(
                ["arm", "seeds"] + [f"after {k}" for k in ks] + ["experiments to reach the target"],
                rows,
            ),
        ]
    )


def fate_table(arms: Sequence[str], results: dict[str, list[ArmSeed]], total: int) -> str:
    """Where the best configuration each seed ran stopped on its way to the hand-over after
    ``total`` experiments (``ym.best_run_fate``): seeds per stage, the median experiment
    that first ran it and the median true gain over the base it was judged against."""
    rows = []
    for arm, seeds in arms_that_ran(arms, results):
        fates = [ym.best_run_fate(a, total) for a in seeds]
        found = [x for x in fates if x.stage is not None]
        counts = [sum(x.stage == stage for x in found) for stage in ym.FATES]
        first = [x.first for x in found if x.first is not None]
        gains = [x.gain for x in found if x.gain is not None]
        rows.append(
            [
                arm,
                len(seeds),
                len(seeds) - len(found),
                *counts,
                f"{statistics.median(first):g}" if first else "—",
                f"{statistics.median(gains):+.3f}" if gains else "— (no base)" if found else "—",
            ]
        )
    if not rows:
        return ""
    return "\n".join(
        [
            f"#### Why the best configuration run was or was not handed over, after {total}",
            "",
            "for each seed, the configuration with the best true value among the experiments "
            "(when one beat the start): seeds by where it stopped -- its first run screened "
            "out (a discard nothing re-ran), its confirmation failed, kept only (without "
            f"the {MIN_CHAMPION_RUNS} runs no verdict chose that the champion rule counts), "
            "measured but not picked, handed over (Optuna: every finished trial is measured, "
            "the best observed is handed) -- the experiment that first ran it (median) and "
            "its true value's gain over the base it was judged against (median, in the "
            "metric's units; the landscape's noise sd is in the header)",
            "",
            table(
                [
                    "arm",
                    "seeds",
                    "none beat the start",
                    *ym.FATES,
                    "first run at experiment",
                    "true gain over its base",
                ],
                rows,
            ),
        ]
    )


def paired_table(results: dict[str, list[ArmSeed]], total: int, target: float | None) -> str:
    """Paired comparisons over the seeds both arms ran."""
    rows = []
    for a, b in PAIRS:
        ra, rb, common = paired_seeds(results, a, b)
        if not common:
            continue
        ca = [ym.handed_curve(ra[s], total) for s in common]
        cb = [ym.handed_curve(rb[s], total) for s in common]
        p_true = ym.paired([c[-1] for c in ca], [c[-1] for c in cb])
        row = [
            f"{a} − {b}",
            p_true.n,
            f"{p_true.median_diff:+.3f}",
            f"{p_true.a_better}/{p_true.b_better}",
            f"{p_true.p:.2g}",
        ]
        if target is not None:
            ea = censored(reach_values(ca, target), total)
            eb = censored(reach_values(cb, target), total)
            p_reach = ym.paired(ea, eb)
            row += [
                f"{p_reach.median_diff:+g}",
                f"{p_reach.a_better}/{p_reach.b_better}",
                f"{p_reach.p:.2g}",
            ]
        else:
            row += ["n/a (flat)"] * 3
        rows.append(row)
    return table(
        [
            "a − b",
            "seeds",
            f"true value after {total}: median difference",
            "seeds a better / b better",
            "Wilcoxon p",
            "experiments to target: median difference",
            "seeds a sooner / b sooner",
            "Wilcoxon p",
        ],
        rows,
    )


def plot(
    panels: Sequence[tuple[str, dict[str, list[ArmSeed]], float | None]],
    arms: Sequence[str],
    total: int,
    path: Path,
) -> None:
    """True value of the handed configuration vs experiments: median and 95 % CI band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4), dpi=110)
    axes = np.atleast_1d(axes)
    ks = np.arange(total + 1)
    for ax, (name, results, target) in zip(axes, panels, strict=True):
        if target is None:  # flat: every true value is the same; show the judge instead
            for arm, seeds in arms_that_ran(arms, results):
                if not arm.startswith("labswarm"):
                    continue
                fk = np.array([ym.false_keep_curve(a, total) for a in seeds], dtype=float)
                lo, hi = ym.median_ci_band(fk)
                (line,) = ax.plot(ks, np.median(fk, axis=0), label=f"{arm} (n={len(seeds)})")
                ax.fill_between(ks, lo, hi, alpha=0.15, color=line.get_color())
            ax.set_title(f"{name}: false keeps (every keep is false here)")
            ax.set_xlabel("experiments (all workers together)")
            ax.set_ylabel("false keeps so far")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
            continue
        low, start = math.inf, -math.inf
        for arm, seeds in arms_that_ran(arms, results):
            curves = np.array([ym.handed_curve(a, total) for a in seeds], dtype=float)
            lo, hi = ym.median_ci_band(curves)
            (line,) = ax.plot(ks, np.median(curves, axis=0), label=f"{arm} (n={len(seeds)})")
            ax.fill_between(ks, lo, hi, alpha=0.15, color=line.get_color())
            low = min(low, float(lo.min()))
            start = max(start, seeds[0].start_true)
        ax.axhline(target, color="black", lw=0.8, ls="--", label=f"target {target:.3f}")
        if math.isfinite(low):  # a first random trial can be far worse than the start
            ax.set_ylim(min(low, target) - 0.05, start + 0.25)
        ax.set_title(name)
        ax.set_xlabel("experiments (all workers together)")
        ax.set_ylabel("true value of the handed configuration")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
