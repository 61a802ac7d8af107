"""benchmarks/finalists_model.py prints one timed row per swarm size."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import finalists_model  # noqa: E402


def test_one_row_per_size_with_a_time(capsys):
    assert finalists_model.main(["--programs", "8,12", "--knobs", "3"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert rows[0] == "| programs | knobs | fit and predict, s |"
    timed = [r.strip("| ").split(" | ") for r in rows[1:]]
    assert [(n, k) for n, k, _ in timed] == [("8", "3"), ("12", "3")]
    assert all(float(s) >= 0 for _, _, s in timed)


def test_the_bowl_is_what_the_model_is_fitted_to():
    points, means = finalists_model.programs(30, 4, seed=1)
    assert len(points) == len(means) == 30 and all(len(p) == 4 for p in points)
    assert all(0 <= x <= 1 for p in points for x in p)
    # the same seed, the same swarm
    assert finalists_model.programs(30, 4, seed=1) == (points, means)
