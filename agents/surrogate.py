"""A Gaussian process over a swarm's measured programs: their means as a model predicts them.

The finalists of a swarm (``SwarmConfig.finalists``) are re-measured at its end, and which
programs get those runs decides what it can hand over. Ranked by their own mean, the
finalists are mostly the programs whose one run was lucky. With the builtin proposer on
whole configurations every program is the root with other knob values, so a model over the
knob values can pool the runs of neighbouring configurations: ``finalists_by="model"``
ranks the programs by the mean a Gaussian process fitted to every measured program
predicts for them (docs/judging.md, "Finalists").

The model: scikit-learn's ``GaussianProcessRegressor``, a constant times a Matern 5/2
kernel with one length scale per encoded knob, plus white noise (the run-to-run noise and
what the kernel cannot fit), the targets normalised; each program one point (its mean).
Knobs are encoded by the swarm's recorded search space (``describe_space``): a range on
[0, 1] (its log where the range is log), numeric choices by their place between the
smallest and the largest, booleans as 0 / 1, other choices one column each.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

# Below this many measured programs the model is not fitted: the means are the ranking.
MIN_POINTS = 4


def _unit(value: float, low: float, high: float, log: bool) -> float:
    if log and low > 0 and value > 0:
        value, low, high = math.log(value), math.log(low), math.log(high)
    return (value - low) / (high - low) if high > low else 0.0


def encode(space: Mapping[str, Mapping[str, Any]], values: Mapping[str, Any]) -> list[float]:
    """The feature vector of one program's knob ``values`` under the recorded ``space``
    (module docstring); a knob missing from ``values`` raises ``KeyError`` naming it."""
    features: list[float] = []
    for name, dist in space.items():
        if name not in values:
            raise KeyError(f"knob {name!r} not set by the program")
        value = values[name]
        choices = dist.get("choices")
        if choices is None:
            features.append(_unit(float(value), dist["low"], dist["high"], bool(dist["log"])))
        elif all(isinstance(c, bool) for c in choices):
            features.append(1.0 if value else 0.0)
        elif all(isinstance(c, int | float) and not isinstance(c, bool) for c in choices):
            features.append(_unit(float(value), min(choices), max(choices), False))
        else:
            features.extend(1.0 if value == c else 0.0 for c in choices)
    return features


def predicted_means(points: Sequence[Sequence[float]], means: Sequence[float]) -> list[float]:
    """The mean the Gaussian process fitted to ``(points, means)`` predicts at each point
    (module docstring); the ``means`` themselves below ``MIN_POINTS`` points or when they
    do not differ."""
    if len(points) < MIN_POINTS or len(set(means)) < 2:
        return [float(m) for m in means]
    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    x = np.asarray(points, dtype=float)
    y = np.asarray(means, dtype=float)
    kernel = ConstantKernel(1.0, (1e-3, 1e2)) * Matern(
        length_scale=np.full(x.shape[1], 0.5), length_scale_bounds=(0.02, 50.0), nu=2.5
    ) + WhiteKernel(0.5, (1e-4, 10.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gp = GaussianProcessRegressor(kernel, normalize_y=True, random_state=0).fit(x, y)
    return [float(v) for v in gp.predict(x)]
