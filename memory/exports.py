"""Exports people already use: autoresearch's ``results.tsv`` and its progress chart.

``results_tsv`` writes the columns ``commit  val_bpb  memory_gb  status  description`` (the
metric column is named after the traces' metric, ``val_bpb`` by default). Only runs that
used a device are written (keep, discard, crash, timeout); a timeout is written as
``crash`` with "(timeout)" appended, as autoresearch logs it; a missing metric or memory is
``0.000000`` / ``0.0``. ``commit`` is the program fingerprint. A run that did not crash is
``keep`` where the progress chart draws it green (``charted_keeps``: a verdict's keep, a
start's replicate, as autoresearch logs its baseline, and the crowning run of a champion
the finals chose after its search-time verdict discarded it, ``crowned_run``), else
``discard``. So any other confirmation or re-measure, recorded keep when it ran, is
``discard``: it re-measures a program already in the file (its description says which),
and as ``keep`` it would read as a second kept change, or a losing finalist as kept. A
short run (multi-fidelity, at another budget than the full runs) is written with "(short
run, S s)" prepended to its description and its promotion as its status (``keep``
promoted, ``discard`` not).

``progress_png`` draws every run in order: keeps as green dots annotated with their
description, each program once (``keep_labels``), sloping into the frame -- the same runs
as ``keep`` in ``results.tsv``; any other confirmation or re-measure, recorded keep when
it ran, is a grey dot like a discard --, crashes as red crosses on the bottom edge,
outliers above the frame as grey triangles on the top edge, and the running best of the
green dots as a step line. Short runs are left out: their metric, at another budget, is
not on the full runs' scale. Both take ``champion`` (memory's champion's fingerprint):
without it, a champion crowned by the finals is drawn grey like its re-measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from memory.models import (
    CRASHED_STATUSES,
    RAN_STATUSES,
    ExperimentPublic,
    Role,
    Status,
    chart_label,
    charted_keeps,
    first_of_each_program,
    kept_change,
    running_best,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _clean(text: str) -> str:
    return " ".join(text.split())


def _memory_gb(t: ExperimentPublic) -> float:
    if t.memory_gb is not None:
        return t.memory_gb
    mb = t.resources.get("peak_memory_mb") if isinstance(t.resources, dict) else None
    return float(mb) / 1024.0 if isinstance(mb, int | float) else 0.0


def results_tsv(traces: Sequence[ExperimentPublic], *, champion: str | None = None) -> str:
    """The TSV text for ``traces`` (in the given order); ``champion``: memory's champion's
    fingerprint, whose crowning run is ``keep`` when it has no other (``crowned_run``)."""
    metric = next((t.metric_name for t in traces if t.metric_name), "val_bpb")
    kept = charted_keeps(traces, champion)
    # Plain tab-separated lines as autoresearch writes them: no quoting, so quotes in a
    # description stay as they are; _clean() folds tabs and newlines into spaces.
    rows = [["commit", metric, "memory_gb", "status", "description"]]
    for t, drawn in zip(traces, kept, strict=True):
        if t.status not in RAN_STATUSES:
            continue
        if t.status in CRASHED_STATUSES:
            status = "crash"
        elif t.role == Role.short:
            status = t.status.value  # its promotion
        else:
            status = "keep" if drawn else "discard"
        description = _clean(t.hypothesis) or "(no description)"
        if t.role == Role.short:
            budget = f", {t.budget_s:g} s" if t.budget_s is not None else ""
            description = f"(short run{budget}) {description}"
        if t.status == Status.timeout:
            description += " (timeout)"
        value = t.metric if t.metric is not None and status != "crash" else 0.0
        rows.append([t.fingerprint, f"{value:.6f}", f"{_memory_gb(t):.1f}", status, description])
    return "".join("\t".join(row) + "\n" for row in rows)


def write_results_tsv(
    traces: Sequence[ExperimentPublic], path: str | Path, *, champion: str | None = None
) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(results_tsv(traces, champion=champion), encoding="utf-8")
    return p


def _short(text: str, width: int = 38) -> str:
    text = _clean(text)
    return text if len(text) <= width else text[: width - 1] + "…"


def progress_title(runs: Sequence[ExperimentPublic]) -> str:
    """The chart's default title: its runs, and the changes a verdict kept among them
    (``kept_change``; the green points also hold the start's replicates)."""
    return f"{len(runs)} runs, {sum(kept_change(t) for t in runs)} kept changes"


def keep_labels(
    runs: Sequence[ExperimentPublic], xs_keep: Sequence[int], ys_keep: Sequence[float]
) -> list[tuple[int, float, str]]:
    """The chart's text beside its green points (``x`` counts ``runs`` from 1): at each
    program's first kept point only (``first_of_each_program``), so the start's
    replicates carry one label; the text is ``chart_label``'s (a champion's crowning
    re-measure names its idea)."""
    kept = set(xs_keep)
    first = first_of_each_program(runs, [x in kept for x in range(1, len(runs) + 1)])
    return [
        (x, y, _short(chart_label(runs, x - 1)))
        for x, y in zip(xs_keep, ys_keep, strict=True)
        if first[x - 1]
    ]


def progress_png(
    traces: Sequence[ExperimentPublic],
    path: str | Path,
    *,
    title: str = "",
    champion: str | None = None,
) -> Path:
    """Draw the progress chart of ``traces`` (in the given order) into a PNG file
    (``champion``: as for :func:`progress_figure`)."""
    from matplotlib import pyplot as plt

    fig = progress_figure(traces, title=title, champion=champion)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, format="png")
    plt.close(fig)
    return p


def progress_figure(
    traces: Sequence[ExperimentPublic], *, title: str = "", champion: str | None = None
) -> Figure:
    """The progress chart of ``traces`` (in the given order) as a matplotlib figure (the
    caller closes it). Each label slopes from its point into the frame, so none runs into
    the title (``tight_layout`` keeps the rightmost ones in the figure)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    runs = [t for t in traces if t.status in RAN_STATUSES and t.role != Role.short]
    metric = next((t.metric_name for t in runs if t.metric_name), "val_bpb")
    maximize = any(t.direction == "maximize" for t in runs)
    xs_keep, ys_keep, xs_disc, ys_disc, xs_crash = [], [], [], [], []
    best_x: list[int] = []
    best_y: list[float] = []
    kept = charted_keeps(runs, champion)
    bests = running_best(runs, "maximize" if maximize else "minimize", kept)
    for i, (t, so_far, drawn) in enumerate(zip(runs, bests, kept, strict=True), start=1):
        if t.metric is None or t.status in CRASHED_STATUSES:
            xs_crash.append(i)
            continue
        if drawn:
            xs_keep.append(i)
            ys_keep.append(t.metric)
        else:
            xs_disc.append(i)
            ys_disc.append(t.metric)
        if so_far.best is not None:
            best_x.append(i)
            best_y.append(so_far.best)

    fig, ax = plt.subplots(figsize=(14, 7), dpi=100)
    values = sorted(ys_keep + ys_disc)
    if values:
        lo, hi = values[0], values[-1]
        if ys_keep:  # a broken run (3.2 vs 0.97) must not flatten the chart
            first = ys_keep[0]
            if maximize:
                lo = max(lo, first - 0.5 * (hi - first))
            else:
                hi = min(hi, first + 0.5 * (first - lo))
        pad = (hi - lo) * 0.08 or 0.01
        ax.set_ylim(lo - pad, hi + pad)
        top, bottom = hi + pad, lo - pad
        inside = [(x, y) for x, y in zip(xs_disc, ys_disc, strict=True) if bottom <= y <= top]
        above = [x for x, y in zip(xs_disc, ys_disc, strict=True) if y > top]
        below = [x for x, y in zip(xs_disc, ys_disc, strict=True) if y < bottom]
        if inside:
            xs_in, ys_in = [x for x, _ in inside], [y for _, y in inside]
            ax.scatter(xs_in, ys_in, s=18, c="#b0b0b0", label="discard / re-test", zorder=2)
        if above:
            ax.scatter(above, [top] * len(above), marker="^", s=30, c="#808080", zorder=2)
        if below:
            ax.scatter(below, [bottom] * len(below), marker="v", s=30, c="#808080", zorder=2)
        if xs_crash:
            y = top if maximize else bottom
            ax.scatter(xs_crash, [y] * len(xs_crash), marker="x", s=40, c="#d62728", zorder=3)
            ax.scatter([], [], marker="x", c="#d62728", label="crash")
    ax.scatter(xs_keep, ys_keep, s=40, c="#2ca02c", label="keep", zorder=4)
    if best_x:
        ax.step(best_x, best_y, where="post", c="#2ca02c", lw=1.5, label="running best", zorder=3)
    y_lo, y_hi = ax.get_ylim()
    for n, (x, y, text) in enumerate(keep_labels(runs, xs_keep, ys_keep)):
        # into the frame: up from a point in its lower half, down from one in its upper
        # half, where a label sloping up would run into the title
        up = 1 if y < (y_lo + y_hi) / 2 else -1
        ax.annotate(
            text,
            (x, y),
            xytext=(6, up * (10 if n % 2 else -14)),
            textcoords="offset points",
            fontsize=7,
            color="#1a5e1a",
            rotation=20 * up,
            rotation_mode="anchor",
            va="bottom" if up > 0 else "top",
        )
    ax.set_title(title or progress_title(runs))
    ax.set_xlabel("experiment #")
    ax.set_ylabel(f"{metric} ({'higher' if maximize else 'lower'} is better)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right" if not maximize else "lower right")
    fig.tight_layout()
    return fig
