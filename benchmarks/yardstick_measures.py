"""The yardstick's measures: computed from an arm's runs, the same way for every arm.

- *handed true value after k*: the true (noise-free) value of the configuration the arm
  would hand its user after its first k runs, in the order they ended: labswarm's
  champion (memory's rule, ``memory.models.champion_of``: a program with at least two
  trusted ``keep`` runs that no verdict chose -- baseline replicates and re-measures; a
  keep's first run and its confirmation do not count -- with the best mean over them
  among those whose mean beat the start's by the keep rule's margin at level 5 % /
  contenders; for the isolated arm
  the best over its swarms), Optuna's best trial (the best COMPLETE value).
  Before any candidate exists, the task's unmodified configuration. Every count of
  experiments counts runs: a confirmation or re-measure run is one experiment.
- *leader after k*: the true value of what ``Store.leader`` would name after k
  experiments (the best mean over a program's measured runs however few: what a person
  watching sees beside the champion, unconfirmed); Optuna: its pick.
- *experiments to reach the target*: the first k whose handed true value is at or below the
  landscape's target (declared before the arms run); None when never.
- *best observed*: the lowest metric observed among the baselines and the experiments.
  Biased low: the minimum of noisy draws.
- *best true value run*: the best true value among the configurations the arm ran (the
  baselines and its first k experiments), whatever it hands over: what the search alone
  found, apart from how well the arm recognises it. *Configurations tried*: the distinct
  configurations among those experiments, re-tests not counted.
- *best true value of the first K configurations*: the same over the baselines and the
  arm's first K distinct configurations only (the report's K: labswarm-shared's count on
  the seed): the sampler per configuration, apart from how many it could afford.
- *recognition funnel*: the best true value among the programs that reached each stage
  of the hand-over -- ran (the best true value run), kept (a trusted keep run: the keep
  rule passed it), measured (a contender of the champion rule: at least its
  ``MIN_CHAMPION_RUNS`` kept runs that no verdict chose) -- and handed over: where between
  the search and the hand-over the arm loses true value. For Optuna every finished trial
  is kept and measured (its pick needs one run).
- *fate of the best run*: where the best configuration an arm ran (its best true value
  among the first k experiments) stopped on its way to the hand-over -- its first run
  screened out (labswarm: no confirmation), not confirmed, kept but never a contender of
  the champion rule, a contender not picked, or handed over -- with the experiment that
  first ran it and its true gain over the base it was judged against: whether the search
  found it too late or the keep rule could not tell it from the noise.
- *hand-over lag*: for each program an arm hands over, the experiments from its first run
  to the hand-over (Optuna: 0; labswarm: a keep, its confirmation and its re-measures, the
  other agents' runs in between).
- *re-measures never picked*: re-measure runs of programs that were never the arm's pick
  in those experiments (they could not help the hand-over).
- *false keep*: a labswarm keep whose true value is not better than its base's true value;
  *missed gain*: a discard whose true value is better than its base's.
- *duplicate run*: an experiment whose configuration had already run in the arm and seed
  (a confirmation, a re-measure or a prior's replicate, a deliberate re-test, is not one).
- *run inside a failed region*: an experiment within distance 1 (knobs encoded to [0, 1],
  divided by the surrogate's length scales) of an earlier crashed experiment of the arm.
- *device-seconds*: the budgets of the experiments run so far (a short run of the
  multi-fidelity arm costs its short budget, every other run the task's); *device-seconds
  to reach the target*: spent when the target is first handed over. Short runs are never
  handed over and never enter the champion rule's runs or noise (another budget).
- *overhead per experiment*: per worker, the gap between the end of a run and the start of
  its next one (proposal, bookkeeping, workspace: everything but the run).
- *experiments per hour*: experiments / (last end - first start).

Every landscape minimises its metric.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from yardstick_arms import ArmSeed, Run

from memory.models import MIN_CHAMPION_RUNS, champion_of, leader_of, pooled_noise

FAILED_REGION_RADIUS = 1.0
BOOTSTRAP = 2000


def _key(config: dict[str, float] | None) -> str | None:
    return json.dumps({k: float(v) for k, v in config.items()}, sort_keys=True) if config else None


def _program(a: ArmSeed, r: Run) -> str:
    """What one handed-over choice is made of: for labswarm, a program (its configuration:
    on the landscape the knobs file is the whole program); for Optuna, one trial."""
    return (_key(r.config) or r.id) if a.arm.startswith("labswarm") else r.id


def _need(a: ArmSeed) -> int:
    """Runs a program needs to be handed over: memory's champion rule for labswarm
    (``memory.models.MIN_CHAMPION_RUNS`` kept runs), one trial for Optuna."""
    return MIN_CHAMPION_RUNS if a.arm.startswith("labswarm") else 1


class _Picker:
    """The arm's pick as runs arrive. labswarm: memory's champion rule
    (``memory.models.champion_of`` over the kept runs no verdict chose, with the noise
    pooled over its measured runs as ``Store.noise`` does); Optuna: the best trial."""

    def __init__(self, a: ArmSeed) -> None:
        self.a, self.need = a, _need(a)
        self.labswarm = a.arm.startswith("labswarm")
        self.groups: dict[str, list[Run]] = {}
        self.measured: dict[str, list[float]] = {}

    def add(self, r: Run) -> None:
        if r.short:  # another budget: memory's champion rule and noise never read it
            return
        if r.ok and r.observed is not None:
            self.measured.setdefault(_program(self.a, r), []).append(r.observed)
        if r.candidate and r.observed is not None:
            self.groups.setdefault(_program(self.a, r), []).append(r)

    def counted(self, runs: list[Run]) -> list[float]:
        """The observed values of a program's kept runs that its pick counts: for labswarm
        those no verdict chose (memory's champion rule), for Optuna every finished trial."""
        return [
            r.observed
            for r in runs
            if r.observed is not None and (r.unselected or not self.labswarm)
        ]

    def contender(self, runs: list[Run]) -> bool:
        """True if a program has the counted runs its pick needs."""
        return len(self.counted(runs)) >= self.need

    def best(self) -> Run | None:
        if self.labswarm:
            # in the order memory recorded each program's first kept run, as Store.champion
            # reads them (a candidate's first run is recorded with its confirmation, so this
            # order can differ from the order the runs ended)
            order = sorted(
                self.groups.items(),
                key=lambda kv: min(
                    r.recorded if r.recorded is not None else r.ended for r in kv[1]
                ),
            )
            key = champion_of(
                ((k, self.counted(runs)) for k, runs in order),
                "minimize",
                pooled_noise(self.measured.values()),
            )
            return self.groups[key][0] if key is not None else None
        best: Run | None = None
        best_mean = math.inf
        for runs in self.groups.values():
            if not self.contender(runs):
                continue
            m = statistics.fmean(self.counted(runs))
            if m < best_mean:
                best, best_mean = runs[0], m
        return best


def same_program(a: ArmSeed, run_id: str, other_id: str) -> bool:
    """True if two runs of the arm are runs of one program (its configuration)."""
    by_id = {r.id: r for r in a.runs}
    one, two = by_id.get(run_id), by_id.get(other_id)
    return one is not None and two is not None and _program(a, one) == _program(a, two)


def picks(a: ArmSeed, total: int) -> list[Run | None]:
    """The arm's pick (a run of the program it hands over; None: the start) after its
    baselines and after each of its first ``total`` experiments: k = 0, 1, ..."""
    picker = _Picker(a)
    for r in a.runs:
        if r.baseline:
            picker.add(r)
    out = [picker.best()]
    for r in a.experiments[:total]:
        picker.add(r)
        out.append(picker.best())
    return out


def handed_true(a: ArmSeed, pick: Run | None) -> float:
    """The true value of what the arm hands over when ``pick`` is its pick (None: the
    start)."""
    return float(pick.true) if pick is not None and pick.true is not None else a.start_true


def handed_curve(a: ArmSeed, total: int) -> list[float]:
    """True value of the configuration handed to the user after k = 0..total experiments."""
    curve = [handed_true(a, best) for best in picks(a, total)]
    while len(curve) < total + 1:
        curve.append(curve[-1])
    return curve


def leader_curve(a: ArmSeed, total: int) -> list[float]:
    """True value of the arm's *leader* after k = 0..total experiments: for labswarm what
    ``Store.leader`` names (``memory.models.leader_of``: the best mean over a program's
    measured runs however few -- one lucky run can lead -- the first to run on a tie; the
    start while nothing measured beats it), what a person watching a swarm sees beside its
    champion; for Optuna its pick (its best trial is both its leader and its hand-over)."""
    if not a.arm.startswith("labswarm"):
        return handed_curve(a, total)
    picker = _Picker(a)  # its measured runs per program, in the order each first ran
    true: dict[str, float] = {}

    def add(r: Run) -> None:
        picker.add(r)
        key = _program(a, r)
        # the true value of a measured run at the full budget (a short run's is another)
        if key in picker.measured and not r.short and r.true is not None:
            true.setdefault(key, float(r.true))

    def now() -> float:
        means = ((k, statistics.fmean(v)) for k, v in picker.measured.items())
        key = leader_of(means, "minimize")
        return true.get(key, a.start_true) if key is not None else a.start_true

    for r in a.runs:
        if r.baseline:
            add(r)
    curve = [now()]
    for r in a.experiments[:total]:
        add(r)
        curve.append(now())
    while len(curve) < total + 1:
        curve.append(curve[-1])
    return curve


def wasted_remeasures(a: ArmSeed, total: int) -> tuple[int, int]:
    """(re-measure runs among the first ``total`` experiments, those of them whose program
    was never the arm's pick at any point of those experiments): what re-measuring every
    kept program costs beyond the programs that took the title."""
    picked = {_program(a, best) for best in picks(a, total)[1:] if best is not None}
    remeasures = [r for r in a.experiments[:total] if r.remeasure]
    return len(remeasures), sum(_program(a, r) not in picked for r in remeasures)


def device_seconds(a: ArmSeed) -> list[float]:
    """The device-seconds the arm had spent after k = 0, 1, ... experiments (its root's
    replicates not counted, as in every count of experiments)."""
    out = [0.0]
    for r in a.experiments:
        out.append(out[-1] + a.seconds(r))
    return out


def within_seconds(a: ArmSeed, seconds: float) -> int:
    """How many of the arm's first experiments fit in ``seconds`` device-seconds."""
    spent = device_seconds(a)
    return max(k for k, s in enumerate(spent) if s <= seconds + 1e-9)


def seconds_to_reach(a: ArmSeed, target: float, seconds: float) -> float | None:
    """The device-seconds spent when the arm first hands over a configuration at or below
    ``target``, within ``seconds`` device-seconds; None when it never does."""
    total = within_seconds(a, seconds)
    k = experiments_to_reach(handed_curve(a, total), target)
    return None if k is None else device_seconds(a)[k]


def handover_lags(a: ArmSeed, total: int) -> list[int]:
    """For each program the arm hands over within its first ``total`` experiments (each
    change of its pick), the experiments from the program's first run to the hand-over:
    what recognising a configuration costs in time. 0 when the run that first tried it
    also handed it over (Optuna's best trial); the start, handed before any experiment,
    is not counted."""
    keys = [_program(a, best) if best is not None else None for best in picks(a, total)]
    first: dict[str, int] = {}
    lags: list[int] = []
    for k, r in enumerate(a.experiments[:total], start=1):
        first.setdefault(_program(a, r), k)
        key = keys[k]
        if key is not None and key != keys[k - 1]:
            lags.append(k - first.get(key, k))
    return lags


def _picker_after(a: ArmSeed, total: int) -> _Picker:
    """The arm's picker fed its baselines and its first ``total`` experiments."""
    picker = _Picker(a)
    for r in [r for r in a.runs if r.baseline] + a.experiments[:total]:
        picker.add(r)
    return picker


def final_candidate(a: ArmSeed, total: int) -> Run | None:
    """The run whose configuration the arm hands over after ``total`` experiments."""
    return _picker_after(a, total).best()


def claimed_gain(a: ArmSeed, total: int) -> tuple[float, int, int] | None:
    """What the arm claims after ``total`` experiments: its pick's mean observed value below
    the start's (the baseline replicates'), with the runs behind each mean; None when the
    arm has no baselines or no pick."""
    picker = _picker_after(a, total)
    best = picker.best()
    root = [r.observed for r in a.runs if r.baseline and r.candidate and r.observed is not None]
    if best is None or not root:
        return None
    runs = picker.groups[_program(a, best)]
    mean = statistics.fmean(r.observed for r in runs if r.observed is not None)
    return statistics.fmean(root) - mean, len(runs), len(root)


class Funnel(NamedTuple):
    """The best true value among the programs that reached each stage of the hand-over
    after some experiments (lower is better; every stage holds the start's baselines)."""

    ran: float
    kept: float
    measured: float
    handed: float


def funnel(a: ArmSeed, total: int) -> Funnel:
    """The recognition funnel after ``total`` experiments: the best true value run, the
    best among kept programs, the best among the champion rule's contenders (programs with
    ``MIN_CHAMPION_RUNS`` kept runs that no verdict chose; Optuna: one finished trial), and
    the handed one (:func:`handed_true`)."""
    picker = _picker_after(a, total)

    def true_of(runs: list[Run]) -> float:
        return next((r.true for r in runs if r.true is not None), math.nan)

    kept = [true_of(runs) for runs in picker.groups.values()]
    measured = [true_of(rs) for rs in picker.groups.values() if picker.contender(rs)]
    return Funnel(
        ran=best_true_run(a, total),
        kept=min(kept, default=a.start_true),
        measured=min(measured, default=a.start_true),
        handed=handed_true(a, picker.best()),
    )


FATES = ("screened out", "not confirmed", "kept only", "measured", "handed")


class Fate(NamedTuple):
    """Where the best configuration run stopped (one of :data:`FATES`; None when no
    experiment beat the start's true value), the experiment (from 1) that first ran it,
    and its true value's gain over its base's (labswarm; None for Optuna)."""

    stage: str | None
    first: int | None
    gain: float | None


def best_run_fate(a: ArmSeed, total: int) -> Fate:
    """The fate of the best configuration among the first ``total`` experiments (ties: the
    first to run it): ``screened out`` -- its first run was a discard and nothing re-ran it;
    ``not confirmed`` -- a confirmation ran and it was not kept; ``kept only`` -- kept but
    without the runs the champion rule counts; ``measured`` -- a contender the pick passed
    over; ``handed`` -- the pick. Optuna's every finished trial is measured."""
    experiments = a.experiments[:total]
    tried = [
        (k, r, r.true)
        for k, r in enumerate(experiments, start=1)
        if r.ok and r.true is not None and not r.short and r.true < a.start_true
    ]
    if not tried:
        return Fate(None, None, None)
    first, best, best_true = min(tried, key=lambda krt: (krt[2], krt[0]))
    key = _program(a, best)
    picker = _picker_after(a, total)
    pick = picker.best()
    by_id = {r.id: r for r in a.runs}
    base = by_id.get(best.base_id or "")
    gain = base.true - best_true if base is not None and base.true is not None else None
    runs = picker.groups.get(key)
    if pick is not None and _program(a, pick) == key:
        stage = "handed"
    elif runs is not None and picker.contender(runs):
        stage = "measured"
    elif runs is not None:
        stage = "kept only"
    elif any(r.retest and _program(a, r) == key for r in experiments):
        stage = "not confirmed"
    else:
        stage = "screened out"
    return Fate(stage, first, gain)


def experiments_to_reach(curve: Sequence[float], target: float) -> int | None:
    """First k with curve[k] <= target, or None when the arm never got there."""
    for k, value in enumerate(curve):
        if value <= target:
            return k
    return None


def best_observed(a: ArmSeed, total: int) -> float:
    pool = [r for r in a.runs if r.baseline] + a.experiments[:total]
    values = [r.observed for r in pool if r.ok and r.observed is not None]
    return min(values) if values else math.nan


def best_true_run(a: ArmSeed, total: int) -> float:
    """The best true value among the configurations run by the baselines and the first
    ``total`` experiments (crashed runs have none)."""
    pool = [r for r in a.runs if r.baseline] + a.experiments[:total]
    values = [r.true for r in pool if r.ok and r.true is not None and not r.short]
    return min(values) if values else math.nan


def best_true_of_first(a: ArmSeed, configurations: int) -> float:
    """The best true value among the baselines and the first ``configurations`` distinct
    configurations the arm ran (re-tests and short runs add none): how good its search is
    per configuration, apart from how many it could afford."""
    seen: set[str] = set()
    values = [r.true for r in a.runs if r.baseline and r.ok and r.true is not None]
    for r in a.experiments:
        if r.retest or r.short:
            continue
        key = _key(r.config) or r.id
        if key not in seen:
            if len(seen) >= configurations:
                break
            seen.add(key)
        if r.ok and r.true is not None:
            values.append(r.true)
    return min(values) if values else math.nan


def configurations_tried(a: ArmSeed, total: int) -> int:
    """Distinct configurations among the first ``total`` experiments, re-tests not counted."""
    return len({_key(r.config) or r.id for r in a.experiments[:total] if not r.retest})


def judge_errors(a: ArmSeed) -> tuple[int, int, int] | None:
    """(keeps, false keeps, missed gains) of a judged (labswarm) arm, else None."""
    judged = [r for r in a.experiments if r.kept is not None]
    if not judged:
        return None if not any(r.base_id for r in a.runs) else (0, 0, 0)
    by_id = {r.id: r for r in a.runs}
    keeps = false = missed = 0
    for r in judged:
        base = by_id.get(r.base_id or "")
        if base is None or base.true is None or r.true is None:
            continue
        if r.kept:
            keeps += 1
            false += r.true >= base.true
        else:
            missed += r.true < base.true
    return keeps, false, missed


def false_keep_curve(a: ArmSeed, total: int) -> list[int]:
    """False keeps among the first k = 0..total experiments."""
    by_id = {r.id: r for r in a.runs}
    curve = [0]
    for r in a.experiments[:total]:
        base = by_id.get(r.base_id or "")
        false = (
            r.kept is True
            and base is not None
            and base.true is not None
            and r.true is not None
            and r.true >= base.true
        )
        curve.append(curve[-1] + int(false))
    while len(curve) < total + 1:
        curve.append(curve[-1])
    return curve


def duplicate_runs(a: ArmSeed) -> int:
    seen = {_key(r.config) for r in a.runs if r.baseline}
    dups = 0
    for r in a.experiments:
        k = _key(r.config)
        if k is not None and k in seen and not (r.retest or r.replicate or r.promoted):
            dups += 1
        seen.add(k)
    return dups


def crashes(a: ArmSeed, total: int | None = None) -> int:
    """Crashed (or timed-out) experiments, among the first ``total`` if given."""
    return sum(1 for r in a.experiments[:total] if not r.ok)


class Metric:
    """The landscape's distance: encoded knobs divided by the surrogate's length scales."""

    def __init__(self, landscape: Path) -> None:
        if str(landscape) not in sys.path:
            sys.path.insert(0, str(landscape))
        import space

        data = json.loads((landscape / "surrogate.json").read_text(encoding="utf-8"))
        self.space = space
        self.length = np.asarray(data["gp"]["length_scale"], dtype=float)

    def point(self, config: dict[str, float]) -> np.ndarray:
        x = np.clip(np.asarray(self.space.encode(config), dtype=float), 0.0, 1.0)
        return x / self.length


def failed_region_runs(a: ArmSeed, metric: Metric) -> int:
    """Experiments within FAILED_REGION_RADIUS of an earlier crashed experiment."""
    crashed: list[np.ndarray] = []
    count = 0
    for r in a.experiments:
        if r.config is None:
            continue
        p = metric.point(r.config)
        if any(float(np.linalg.norm(p - q)) <= FAILED_REGION_RADIUS for q in crashed):
            count += 1
        if not r.ok:
            crashed.append(p)
    return count


def overheads(a: ArmSeed) -> list[float]:
    """Per worker: start of a run minus the end of the worker's previous run (seconds)."""
    by_worker: dict[str, list[Run]] = {}
    for r in a.experiments:
        by_worker.setdefault(r.worker, []).append(r)
    out = []
    for runs in by_worker.values():
        runs.sort(key=lambda r: r.started)
        for prev, nxt in zip(runs, runs[1:], strict=False):
            out.append(max(nxt.started - (prev.started + prev.duration), 0.0))
    return out


def experiments_per_hour(a: ArmSeed) -> float:
    exps = a.experiments
    if len(exps) < 2:
        return math.nan
    span = max(r.ended for r in exps) - min(r.started for r in exps)
    return len(exps) / span * 3600 if span > 0 else math.nan


# -- statistics ------------------------------------------------------------------------


@dataclass
class Summary:
    """Median, spread (p25-p75) and a bootstrap 95 % CI of the median over seeds."""

    median: float
    p25: float
    p75: float
    lo: float
    hi: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float], seed: int = 0) -> Summary:
        v = np.array([x for x in values if x is not None and not math.isnan(x)], dtype=float)
        if v.size == 0:
            return cls(math.nan, math.nan, math.nan, math.nan, math.nan, 0)
        rng = np.random.default_rng(seed)
        boot = np.median(rng.choice(v, size=(BOOTSTRAP, v.size), replace=True), axis=1)
        return cls(
            float(np.median(v)),
            float(np.percentile(v, 25)),
            float(np.percentile(v, 75)),
            float(np.percentile(boot, 2.5)),
            float(np.percentile(boot, 97.5)),
            int(v.size),
        )


def median_ci_band(curves: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Bootstrap 95 % CI of the median over seeds (rows), at every k (columns)."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, curves.shape[0], size=(BOOTSTRAP, curves.shape[0]))
    boot = np.median(curves[idx], axis=1)
    return np.percentile(boot, 2.5, axis=0), np.percentile(boot, 97.5, axis=0)


@dataclass
class Paired:
    """A paired comparison of two arms over the seeds both ran."""

    n: int
    median_diff: float  # median over seeds of (a - b)
    a_better: int  # seeds where a is lower (better)
    b_better: int
    p: float  # Wilcoxon signed-rank, two-sided (1.0 when every difference is 0)


def paired(a: Sequence[float], b: Sequence[float]) -> Paired:
    from scipy.stats import wilcoxon

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if d.size == 0:
        return Paired(0, math.nan, 0, 0, math.nan)
    nonzero = d[d != 0]
    p = 1.0 if nonzero.size == 0 else float(wilcoxon(nonzero).pvalue)
    return Paired(int(d.size), float(np.median(d)), int((d < 0).sum()), int((d > 0).sum()), p)


def fraction(num: float, den: float) -> float:
    return num / den if den else math.nan


def mean(values: Sequence[float]) -> float:
    v = [x for x in values if not math.isnan(x)]
    return statistics.fmean(v) if v else math.nan
