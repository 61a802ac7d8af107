"""Exports: autoresearch's results.tsv and the progress chart PNG, checked by content.

.venv/bin/pytest tests/memory/test_exports.py -q
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from memory import ExperimentPublic, Status
from memory.exports import (
    keep_labels,
    progress_figure,
    progress_png,
    progress_title,
    results_tsv,
    write_results_tsv,
)
from memory.models import ExperimentCreate, Role, charted_keeps, crowned_run, running_best
from memory.packs import load_pack

SOURCE_TSV = Path("/work/shared/data/autoresearch/karpathy-h100-mar8-results.tsv")


def karpathy_traces(pack: Path) -> list[ExperimentPublic]:
    return [ExperimentPublic.model_validate(t.model_dump()) for t in load_pack(pack).traces]


def test_results_tsv_reproduces_karpathys_log(karpathy_pack: Path, tmp_path: Path) -> None:
    out = write_results_tsv(karpathy_traces(karpathy_pack), tmp_path / "results.tsv")
    text = out.read_text()
    rows = list(csv.reader(text.splitlines(), delimiter="\t"))
    assert rows[0] == ["commit", "val_bpb", "memory_gb", "status", "description"]
    assert len(rows) == 127
    assert rows[16] == ["e05a87d", "0.000000", "0.0", "crash", rows[16][4]]
    assert rows[-1][:4] == ["a6b6476", "0.970286", "60.2", "discard"]
    if SOURCE_TSV.exists():  # the converter and the exporter are exact inverses
        assert text == SOURCE_TSV.read_text()


def _trace(i: int, status: Status, metric: float | None, **kw: object) -> ExperimentPublic:
    fields: dict[str, object] = {"hypothesis": f"idea {i}", "fingerprint": f"fp{i}", **kw}
    data = ExperimentCreate(task="t", status=status, metric=metric, **fields).model_dump()
    data.update(id=f"e{i}", created_at="2026-01-01T00:00:00Z")
    return ExperimentPublic.model_validate(data)


def test_results_tsv_maps_statuses() -> None:
    traces = [
        _trace(1, Status.keep, 1.5, resources={"peak_memory_mb": 2048}),
        _trace(2, Status.timeout, None),
        _trace(3, Status.duplicate, None),  # never ran: not in the log
        _trace(4, Status.invalid, None),
        _trace(5, Status.discard, 1.7, hypothesis="tab\there\nnewline"),
        _trace(6, Status.discard, 1.8, hypothesis='MODE "a" -> "b"'),
        _trace(7, Status.keep, 2.4, role=Role.short, budget_s=60.0),  # promoted
    ]
    rows = [r.split("\t") for r in results_tsv(traces).splitlines()]
    assert rows[1] == ["fp1", "1.500000", "2.0", "keep", "idea 1"]
    assert rows[2] == ["fp2", "0.000000", "0.0", "crash", "idea 2 (timeout)"]
    assert rows[3] == ["fp5", "1.700000", "0.0", "discard", "tab here newline"]
    assert rows[4] == ["fp6", "1.800000", "0.0", "discard", 'MODE "a" -> "b"']  # unquoted
    assert rows[5] == ["fp7", "2.400000", "0.0", "keep", "(short run, 60 s) idea 7"]
    assert len(rows) == 6


def test_results_tsv_keeps_what_the_chart_keeps() -> None:
    """A swarm's re-tests are recorded keep when they ran; written so, a losing finalist's
    re-measures (and a kept change's confirmation) read as kept changes in the file
    autoresearch's notebook counts keeps from. The file says keep where the chart is green."""
    traces = [
        _trace(1, Status.keep, 3.06, role=Role.baseline, hypothesis="baseline replicate 1"),
        _trace(2, Status.keep, 3.05, role=Role.baseline, hypothesis="baseline replicate 2"),
        _trace(3, Status.keep, 3.01, hypothesis="LR up"),
        _trace(4, Status.keep, 3.02, role=Role.confirmation, hypothesis="confirmation of e3"),
        _trace(5, Status.discard, 3.70, hypothesis="a finalist"),
        _trace(6, Status.keep, 3.67, role=Role.remeasure, hypothesis="final re-measure 1 of e5"),
        _trace(7, Status.keep, 3.20, role=Role.seed, hypothesis="an imported keep"),
        _trace(8, Status.crash, None, role=Role.confirmation, hypothesis="confirmation of e9"),
    ]
    rows = [r.split("\t") for r in results_tsv(traces).splitlines()[1:]]
    assert [(r[0], r[3]) for r in rows] == [
        ("fp1", "keep"),
        ("fp2", "keep"),
        ("fp3", "keep"),
        ("fp4", "discard"),
        ("fp5", "discard"),
        ("fp6", "discard"),
        ("fp7", "keep"),
        ("fp8", "crash"),
    ]
    assert rows[5][4] == "final re-measure 1 of e5"  # the row says what it re-measured
    assert progress_title(traces) == "8 runs, 2 kept changes"  # LR up and the imported keep


def test_progress_png_draws_every_run(karpathy_pack: Path, tmp_path: Path) -> None:
    out = progress_png(karpathy_traces(karpathy_pack), tmp_path / "progress.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = mpimg.imread(out)
    assert img.shape[:2] == (700, 1400)
    rgb = img[..., :3]
    green = (rgb[..., 1] > 0.5) & (rgb[..., 0] < 0.3) & (rgb[..., 2] < 0.3)  # keeps + best line
    grey = (np.abs(rgb[..., 0] - 0.69) < 0.03) & (np.abs(rgb[..., 1] - 0.69) < 0.03)  # discards
    red = (rgb[..., 0] > 0.75) & (rgb[..., 1] < 0.25) & (rgb[..., 2] < 0.25)  # the crash
    assert green.sum() > 2000 and grey.sum() > 1000 and red.sum() > 20
    # the running best only goes down, left to right: green pixels in the right half sit lower
    ys, xs = np.nonzero(green)
    assert ys[xs > 900].mean() > ys[(xs > 150) & (xs < 400)].mean()


def test_progress_png_maximize_and_empty(tmp_path: Path) -> None:
    traces = [
        _trace(i, Status.discard if i % 3 else Status.keep, 0.5 + i / 100, direction="maximize")
        for i in range(12)
    ]
    out = progress_png(traces, tmp_path / "up.png", title="accuracy")
    assert mpimg.imread(out).shape[:2] == (700, 1400)
    empty = progress_png([], tmp_path / "empty.png")
    assert empty.stat().st_size > 1000


def test_the_chart_labels_each_kept_program_once() -> None:
    """The start's three replicates are one program: its label was drawn three times over
    itself at the chart's left edge, unreadable."""
    start = {"fingerprint": "root", "role": Role.baseline}
    runs = [
        _trace(1, Status.keep, 3.06, hypothesis="baseline replicate 1: the program", **start),
        _trace(2, Status.keep, 3.05, hypothesis="baseline replicate 2: the program", **start),
        _trace(3, Status.keep, 3.04, hypothesis="baseline replicate 3: the program", **start),
        _trace(4, Status.discard, 3.10),
        _trace(5, Status.keep, 2.90, hypothesis="LR up"),
        _trace(6, Status.keep, 2.80, hypothesis="DEPTH up"),
    ]
    labels = keep_labels(runs, [1, 2, 3, 5, 6], [3.06, 3.05, 3.04, 2.90, 2.80])
    assert labels == [
        (1, 3.06, "baseline replicate 1: the program"),
        (5, 2.90, "LR up"),
        (6, 2.80, "DEPTH up"),
    ]


def test_progress_png_leaves_short_runs_out(tmp_path: Path) -> None:
    """A short run's metric is at another budget: drawn beside the full runs, a promoted
    one would be a keep far above them (here, off the frame, a triangle on the top edge)."""
    full = [
        _trace(i, Status.keep if i % 4 == 0 else Status.discard, 1.0 - i / 100) for i in range(12)
    ]
    short = [_trace(20 + i, Status.keep, 3.0, role=Role.short, budget_s=60.0) for i in range(12)]
    alone = mpimg.imread(progress_png(full, tmp_path / "full.png"))
    mixed = mpimg.imread(progress_png(full + short, tmp_path / "mixed.png"))
    assert np.array_equal(alone, mixed)


@pytest.mark.parametrize("direction", ["minimize", "maximize"])
def test_the_chart_labels_stay_in_the_figure_and_off_the_title(direction: str) -> None:
    """Kept changes, each a new best, up to the middle run, then discards: the best point
    lies at the frame's top under the title (maximize) or at its bottom, mid-chart; then
    a last new best at the right edge."""
    from matplotlib import pyplot as plt

    sign = 1 if direction == "maximize" else -1
    values = [0.50, 0.49, 0.52, 0.50, 0.55, 0.51, 0.62, 0.52, 0.50, 0.53, 0.51, 0.52, 0.61]
    runs = [
        _trace(
            i,
            Status.keep if i in (1, 3, 5, 7, 13) else Status.discard,
            0.5 + sign * (v - 0.5),
            direction=direction,
            hypothesis=f"idea {i}: a change with a description as long as a real one",
        )
        for i, v in enumerate(values, start=1)
    ]
    fig = progress_figure(runs)
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        ax = fig.axes[0]
        title = ax.title.get_window_extent(renderer)
        labels = [t.get_window_extent(renderer) for t in ax.texts]
        assert len(labels) == 5
        for box in labels:
            assert not box.overlaps(title), (box, title)
            assert fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1, (box, fig.bbox)
            assert fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1, (box, fig.bbox)
    finally:
        plt.close(fig)


def _finals_crowned() -> list[ExperimentPublic]:
    """A swarm that re-tests at its end: its search kept one change (fp4); the finals
    crowned another program (fx), which its search-time verdict had discarded as a
    suspect gain."""
    start = {"fingerprint": "root", "role": Role.baseline}
    fx = {"fingerprint": "fx"}
    return [
        _trace(1, Status.keep, 2.91, hypothesis="baseline replicate 1: the program", **start),
        _trace(2, Status.keep, 2.93, hypothesis="baseline replicate 2: the program", **start),
        _trace(3, Status.keep, 2.89, hypothesis="baseline replicate 3: the program", **start),
        _trace(4, Status.keep, 2.82, hypothesis="DEPTH down"),
        _trace(5, Status.discard, 2.39, hypothesis="SEQ_LEN down", **fx),
        _trace(6, Status.discard, 3.60, hypothesis="WIDTH up"),
        _trace(
            7,
            Status.keep,
            2.42,
            hypothesis="final re-measure 1 of e5: SEQ_LEN down",
            role=Role.remeasure,
            **fx,
        ),
        _trace(
            8,
            Status.keep,
            2.41,
            hypothesis="final re-measure 2 of e5: SEQ_LEN down",
            role=Role.remeasure,
            **fx,
        ),
    ]


def test_a_champion_the_finals_chose_is_kept_in_results_tsv_and_on_the_chart() -> None:
    """Drawn grey, the chart's running best stopped at the search's keep (2.82) while the
    swarm's champion measured 2.41; results.tsv had it as discard on every row."""
    from matplotlib import pyplot as plt

    runs = _finals_crowned()
    assert crowned_run(runs, "fx") == 7  # its last re-measure
    assert crowned_run(runs, "fp4") is None and crowned_run(runs, "root") is None  # kept
    assert crowned_run(runs, None) is None

    def statuses(tsv: str) -> list[str]:
        return [row.split("\t")[3] for row in tsv.splitlines()[1:]]

    assert statuses(results_tsv(runs, champion="fx")) == ["keep"] * 4 + ["discard"] * 3 + ["keep"]
    assert statuses(results_tsv(runs)) == ["keep"] * 4 + ["discard"] * 4
    assert running_best(runs, "minimize", charted_keeps(runs, "fx"))[-1] == (2.41, True)
    assert running_best(runs, "minimize")[-1] == (2.82, False)
    fig = progress_figure(runs, champion="fx")
    try:
        texts = [t.get_text() for t in fig.axes[0].texts]
    finally:
        plt.close(fig)
    assert texts == [
        "baseline replicate 1: the program",
        "DEPTH down",
        "champion (finals): SEQ_LEN down",
    ]
