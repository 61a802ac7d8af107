"""The finalists' model (agents.surrogate): knob values encoded by the recorded search
space, and a Gaussian process that pools neighbouring configurations' runs."""

from __future__ import annotations

import random

import pytest

from agents.surrogate import MIN_POINTS, encode, predicted_means

SPACE = {
    "LR": {"low": 0.01, "high": 1.0, "log": True, "step": None},
    "WARMUP": {"low": 0.0, "high": 0.5, "log": False, "step": None},
    "WIDTH": {"choices": [4, 8, 16, 32]},
    "USE_BIAS": {"choices": [False, True]},
    "MODE": {"choices": ["a", "b", "c"]},
}


def test_each_kind_of_knob_is_encoded_by_its_recorded_range_or_choices():
    values = {"LR": 0.1, "WARMUP": 0.1, "WIDTH": 16, "USE_BIAS": True, "MODE": "b"}
    # LR: halfway between 0.01 and 1 in log; WARMUP 0.1 of 0.5; WIDTH 16 between 4 and
    # 32; a boolean as 1; one column per string choice
    assert encode(SPACE, values) == pytest.approx([0.5, 0.2, 12 / 28, 1.0, 0.0, 1.0, 0.0])


def test_a_program_without_a_knob_of_the_space_is_refused_naming_it():
    with pytest.raises(KeyError, match="MODE"):
        encode(SPACE, {"LR": 0.1, "WARMUP": 0.1, "WIDTH": 16, "USE_BIAS": True})


def _bowl(lucky: float) -> tuple[list[list[float]], list[float]]:
    """One run each on a noisy bowl over [0, 1] (optimum 0.3), the run at 0.85 lucky by
    ``lucky`` below the best of the others."""
    rng = random.Random(7)
    xs = [i / 14 for i in range(15)]
    ys = [(x - 0.3) ** 2 + rng.gauss(0, 0.005) for x in xs]
    far = min(range(15), key=lambda i: abs(xs[i] - 0.85))
    ys[far] = min(ys) - lucky
    return [[x] for x in xs], ys


def test_a_lucky_run_among_poor_neighbours_is_predicted_poor():
    points, means = _bowl(lucky=0.02)
    predicted = predicted_means(points, means)
    lucky = min(range(len(means)), key=means.__getitem__)
    best = min(range(len(predicted)), key=predicted.__getitem__)
    # by its own mean the lucky run is the best; the model ranks a run near the optimum
    # first and predicts the lucky one well above what it printed
    assert points[lucky][0] > 0.8
    assert abs(points[best][0] - 0.3) < 0.1
    assert predicted[lucky] > means[lucky] + 0.05


def test_too_few_or_equal_runs_are_ranked_by_their_own_means():
    points, means = _bowl(lucky=0.02)
    few = means[: MIN_POINTS - 1]
    assert predicted_means(points[: MIN_POINTS - 1], few) == few
    assert predicted_means(points, [0.5] * len(points)) == [0.5] * len(points)
