"""Tables and plots of the memory-value benchmark: ``benchmarks/results/report.md``."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memory_value_measures import Spread

OVERHEAD_BUDGET_S = 300.0  # the target: overhead <= 1 % of a 300 s budget


@dataclass
class ArmSummary:
    """Per-seed measures of one arm."""

    arm: str
    curves: list[list[float]] = field(default_factory=list)
    experiments: list[int] = field(default_factory=list)
    duplicates: list[int] = field(default_factory=list)
    refused: list[int] = field(default_factory=list)
    crashes: list[int] = field(default_factory=list)
    failed_region: list[int] = field(default_factory=list)
    to_target: list[int | None] = field(default_factory=list)
    overheads: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _f(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _spread(s: Spread, digits: int = 4) -> str:
    if s.n == 0:
        return "n/a"
    return f"{_f(s.median, digits)} ({_f(s.p25, digits)}–{_f(s.p75, digits)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _median_reach(values: Sequence[int | None], total: int) -> str:
    reached = [v for v in values if v is not None]
    if not values:
        return "n/a"
    # a seed that never reached the target counts as "more than total"
    padded = sorted(v if v is not None else math.inf for v in values)
    med = statistics.median(padded)
    shown = f"> {total}" if math.isinf(med) else f"{med:g}"
    return f"{shown} (reached in {len(reached)}/{len(values)} seeds)"


def arms_table(summaries: Sequence[ArmSummary], total: int) -> str:
    rows = []
    for s in summaries:
        finals = Spread.of(c[-1] for c in s.curves)
        rows.append(
            [
                s.arm,
                _f(statistics.fmean(s.experiments), 1) if s.experiments else "n/a",
                sum(s.duplicates),
                sum(s.refused),
                sum(s.crashes),
                sum(s.failed_region),
                _spread(finals),
                _median_reach(s.to_target, total),
            ]
        )
    return _table(
        [
            "arm",
            "experiments run (mean/seed)",
            "duplicate runs (all seeds)",
            "duplicates refused before running",
            "crashed runs",
            "runs inside already-failed regions",
            "final best val_bpb, median (p25–p75)",
            "experiments to reach the isolated arm's final best, median",
        ],
        rows,
    )


def curve_table(summaries: Sequence[ArmSummary], total: int) -> str:
    points = sorted({max(1, round(total * f)) for f in (0.125, 0.25, 0.5, 0.75, 1.0)})
    rows = []
    for s in summaries:
        rows.append([s.arm] + [_spread(Spread.of(c[k] for c in s.curves)) for k in points])
    return _table(["arm"] + [f"after {k}" for k in points], rows)


def overhead_table(summaries: Sequence[ArmSummary]) -> str:
    rows = []
    for s in summaries:
        sp = Spread.of(s.overheads)
        pct = 100 * sp.median / OVERHEAD_BUDGET_S if sp.n else math.nan
        rows.append([s.arm, sp.n, _spread(sp, 3), _f(pct, 3)])
    return _table(
        ["arm", "gaps measured", "overhead s/experiment, median (p25–p75)", "% of 300 s"], rows
    )


def plot_curves(summaries: Sequence[ArmSummary], total: int, path: Path) -> None:
    """Best-vs-experiments per arm: median line, interquartile band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    ks = np.arange(total + 1)
    for s in summaries:
        arr = np.array([c[: total + 1] for c in s.curves], dtype=float)
        if arr.size == 0:
            continue
        med = np.median(arr, axis=0)
        lo, hi = np.percentile(arr, 25, axis=0), np.percentile(arr, 75, axis=0)
        (line,) = ax.plot(ks, med, label=f"{s.arm} (n={len(arr)})")
        ax.fill_between(ks, lo, hi, alpha=0.2, color=line.get_color())
    ax.set_xlabel("experiments spent (all agents together)")
    ax.set_ylabel("best val_bpb so far (lower is better)")
    ax.set_title("Best so far: median and interquartile range over seeds")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_throughput(rows: Sequence[tuple[int, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    ax.plot([r[0] for r in rows], [r[1] for r in rows], marker="o")
    ax.set_xlabel("agents sharing one memory")
    ax.set_ylabel("experiments / hour (landscape)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
