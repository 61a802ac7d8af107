"""Judging a run against its base, with the noise measured on this hardware.

**Noise.** Before its first proposals a swarm runs the unmodified base program
``replicates`` times (default 2) on its own devices and records each run with
``role=baseline``. The noise is the spread of those metrics, ``max - min`` (with two
replicates, the one observed run-to-run difference), never below ``min_noise``.
Replicates already in memory for the same program and hardware class are reused.

**Baselines.** A replicate of the unmodified base is judged only "ran / did not run"
(:func:`judge_replicate`): ``keep`` when it ran and printed a finite metric, otherwise the
same failure status an experiment would get.

**The rule.** A run whose protected files changed is ``invalid``; a run killed at the
hard timeout is ``timeout``; a non-zero exit, NaN or missing metric is ``crash``. Otherwise
the run is a ``keep`` only if it beats its base's metric by *more than* the noise::

    improvement = base - metric   (minimize)      metric - base   (maximize)
    keep  <=>  improvement > noise

and ``discard`` otherwise (inside the noise, or worse). The base's metric is the mean of
every finished run of the base program on this hardware class (so a baseline counts
all its replicates).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from agents.runner import RunResult
from memory.models import Status

DEFAULT_REPLICATES = 2
MIN_REPLICATES = 2  # the noise is the spread of at least two runs


def noise_from(metrics: Sequence[float], min_noise: float = 0.0) -> float:
    """Spread (max - min) of replicate metrics, at least ``min_noise``."""
    if len(metrics) < 2:
        return min_noise
    return max(max(metrics) - min(metrics), min_noise)


@dataclass(frozen=True)
class Verdict:
    status: Status
    reason: str
    improvement: float | None = None


def _failure(result: RunResult, tampered: Sequence[str]) -> Verdict | None:
    """The status of a run that did not produce a trustworthy metric, or None if it did."""
    if tampered:
        return Verdict(Status.invalid, f"the run changed protected file(s): {', '.join(tampered)}")
    if result.status == "interrupted":
        return Verdict(Status.interrupted, result.error)
    if result.status == "timeout":
        return Verdict(Status.timeout, result.error)
    if result.status == "crash" or result.metric is None:
        return Verdict(Status.crash, result.error or "no metric")
    return None


def judge_replicate(result: RunResult, tampered: Sequence[str] = ()) -> Verdict:
    """A baseline replicate: ``keep`` if it ran with a metric, else why it did not run."""
    return _failure(result, tampered) or Verdict(Status.keep, "baseline replicate ran")


def judge(
    result: RunResult,
    base_metric: float | None,
    noise: float,
    direction: str,
    tampered: Sequence[str] = (),
) -> Verdict:
    """The status of one experiment (see the module docstring for the rule)."""
    failed = _failure(result, tampered)
    if failed is not None:
        return failed
    assert result.metric is not None  # _failure returned a crash otherwise
    if base_metric is None:
        return Verdict(Status.discard, "the base has no metric to compare with")
    if direction == "minimize":
        improvement = base_metric - result.metric
    else:
        improvement = result.metric - base_metric
    if improvement > noise:
        return Verdict(
            Status.keep,
            f"better than the base by {improvement:.6g} (noise {noise:.6g})",
            improvement,
        )
    if improvement > 0:
        why = f"better by {improvement:.6g}, inside the noise {noise:.6g}"
    else:
        why = f"not better than the base ({-improvement:.6g} worse)"
    return Verdict(Status.discard, why, improvement)
