"""Judging a run against its base, with the noise measured on this hardware class and budget.

**Seeds.** Every run gets its own ``LABSWARM_SEED`` (:func:`agents.runner.run_seed`), so two
runs of one program differ the way two honest repetitions of an experiment do.

**Noise.** The noise is a standard deviation: the within-program spread pooled over every
program this swarm ran at least twice on this hardware class and budget
(:meth:`memory.base.Store.noise`) -- at first the ``replicates`` (default 3) baseline runs of
the root, then every candidate's run and its confirmation, so the estimate grows and spreads
over the swarm's whole time. A task may declare a floor (``[noise].min`` in ``task.toml``).
Replicates that come out identical mean the program ignores its seed: without a declared
floor the swarm refuses to judge (:class:`NoNoise`).

**The keep rule** (one-sided test at level :data:`ALPHA`, two stages)::

    gain(x)  = base_mean - x  (minimize)   x - base_mean  (maximize)
    margin(k) = t(1 - ALPHA, df) * sd * sqrt(1/k + 1/base_n)

1. *Screen*: a first run whose gain is at most ``screen * sd`` is a ``discard``. One that
   gains more is a *candidate*.
2. *Confirm*: the candidate's program runs again with another seed; it is a ``keep`` only if
   the mean of its two runs gains more than ``margin(2)`` over the base's mean.

``df`` is the noise estimate's degrees of freedom (runs minus programs); with a declared
floor in force the floor is taken as known (normal quantile). Stage 2 alone is a level-
``ALPHA`` test, and stage 1 only removes keeps, so a change with no effect is kept at most
``ALPHA`` of the time whatever the screen; the screen trades confirmation runs for power
(``benchmarks/keep_rule.py`` measures both; docs/judging.md has the numbers). Without
confirmation (``confirm=False``, an ablation) a single run is kept when it gains more than
``margin(1)``.

**Re-measure.** The two runs of a kept program were selected for being good (the winner's
curse), so the agent that kept it runs it ``remeasure`` (default 2) more times with fresh
seeds before building on it: the new base's mean is less lucky, later gains are measured
against a fairer bar, and the noise estimate grows as the champion moves. Only these runs
(and a root's baseline replicates) decide the champion (``memory.models.champion_of``):
with fewer than two, a kept program can never take the title.

Only a *contender* is re-measured (:func:`contends`): a kept program whose two selected
runs' mean is better than the mean of every other program measured at least twice (its
:func:`best_rival`: the champion, or a program kept before it whose runs are as selected
as its own). A kept program that does not beat them even with its two lucky runs would
almost never become the champion with unbiased ones; re-measuring it spent runs the search
needed (on the yardstick's smooth landscape, 373 of 469 re-measure runs were of programs
that never became the champion). It stays the base of the agent that kept it, its mean
the two lucky runs': a stricter bar for that agent's later gains, never a laxer one.

**Sanity gate.** A metric outside the task's plausible range (``[metric].min``/``max``) or a
gain of more than ``suspect_sd`` noise sds in one step is *suspect*: it is re-run (even
without confirmation) before it can be kept, and a program outside the range in either run
is ``invalid``. One exception (``Rules.suspect_to_finals``: a swarm without confirmation
that re-measures finalists at its end): a big step is not re-run at once but discarded,
never a base on one run, and left to the finalists, which rank every program by its runs
whatever their verdict and re-measure the best before any can be champion; a metric out of
range is still re-run at once.

**Short runs** (multi-fidelity, a swarm with a short budget): a new program first runs at
the short budget, and only if that run ranks among the best ``promote`` fraction (default a
third) of every short run of the task at that budget on this hardware class -- this one
included, at least the best one -- does it run at the full budget, where the keep rule
above judges it (:func:`judge_short`: ``keep`` promoted, ``discard`` not). The rule is
successive halving's, decided when the short run ends (an agent never waits for later
ones): with fewer than ``1 / promote`` short runs only the best so far is promoted.

**Failures.** A run whose protected files changed, or that the runner found faking its
metric (:attr:`agents.runner.RunResult.invalid`), is ``invalid``; a run killed at the hard
timeout is ``timeout``; a non-zero exit, NaN or missing metric is ``crash``. A baseline
replicate is judged only "ran / did not run" (:func:`judge_replicate`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from statistics import fmean

from agents.runner import RunResult
from memory.models import (
    KEEP_ALPHA,
    MIN_CHAMPION_RUNS,
    Direction,
    ExperimentPublic,
    NoiseEstimate,
    Role,
    RunStats,
    Status,
    beats,
    better,
    gain,
    margin,
)

DEFAULT_REPLICATES = 3
MIN_REPLICATES = 2  # a spread needs at least two runs of one program
ALPHA = KEEP_ALPHA  # the most often a change with no effect may be kept
DEFAULT_SCREEN = 1.0  # stage 1: a candidate gains more than this many noise sds
DEFAULT_SUSPECT_SD = 8.0  # a one-step gain beyond this many noise sds is re-run first
DEFAULT_PROMOTE = 1 / 3  # the best fraction of short runs that run at the full budget
# extra runs of a newly kept program, so its mean is not only lucky; as many as make it a
# champion (MIN_CHAMPION_RUNS runs no verdict chose): with fewer, no keep ever becomes one
DEFAULT_REMEASURE = MIN_CHAMPION_RUNS
# a keep's rivals: programs measured at least as often as a keep (its run, its confirmation)
RIVAL_RUNS = 2


class NoNoise(RuntimeError):
    """The noise cannot be measured (identical replicates and no declared floor)."""


@dataclass(frozen=True)
class Rules:
    """How runs are judged: the swarm's settings and the task's declared limits."""

    confirm: bool = True
    screen: float = DEFAULT_SCREEN
    remeasure: int = DEFAULT_REMEASURE
    alpha: float = ALPHA
    suspect_sd: float = DEFAULT_SUSPECT_SD
    # without confirmation: a big step is discarded and left to the finalists' re-measure
    # instead of re-run at once (the swarm sets it when it has finalists)
    suspect_to_finals: bool = False
    promote: float = DEFAULT_PROMOTE  # short runs promoted to the full budget (judge_short)
    metric_min: float | None = None
    metric_max: float | None = None
    noise_floor: float | None = None


@dataclass(frozen=True)
class Noise:
    """The noise a verdict uses: sd, the runs and degrees of freedom behind it, and
    whether the task's declared floor replaced a smaller measurement."""

    sd: float
    n: int
    df: int
    floored: bool = False

    def margin(self, runs: int, base_runs: int, alpha: float = ALPHA) -> float:
        """How much better than the base's mean the mean of ``runs`` runs must be
        (``memory.models.margin``: Student's t with ``df``, normal when floored)."""
        return margin(self.sd, self.df, runs, base_runs, known=self.floored, alpha=alpha)


def noise_used(estimate: NoiseEstimate | None, floor: float | None) -> Noise | None:
    """The noise to judge with: the measured sd, at least the declared ``floor``; ``None``
    when there is neither. Raises :class:`NoNoise` for identical replicates and no floor."""
    measured = estimate.sd if estimate is not None else None
    n = estimate.n if estimate is not None else 0
    df = estimate.df if estimate is not None else 0
    if estimate is not None and estimate.identical and floor is None:
        raise NoNoise(identical_message(n))
    if floor is not None and (measured is None or measured < floor):
        return Noise(sd=floor, n=n, df=df, floored=True)
    if measured is None or measured <= 0:
        return None
    return Noise(sd=measured, n=n, df=df)


def identical_message(n: int) -> str:
    return (
        f"the {n} replicate runs of the same program gave identical metrics: the program "
        "ignores LABSWARM_SEED (or fixes its own seed and counts iterations), so its noise "
        "cannot be measured. Make it seed its randomness from LABSWARM_SEED, or declare the "
        "noise floor as [noise] min = <sd> in task.toml; keeps are not judged until then"
    )


@dataclass(frozen=True)
class Verdict:
    """A judged status, why, and what it was judged against (the trace records all)."""

    status: Status
    reason: str
    improvement: float | None = None
    pending: bool = False  # a candidate: re-run before the verdict is final
    suspect: str = ""  # why the sanity gate holds it (empty: it does not)
    base_metric: float | None = None
    base_n: int | None = None
    judged_metric: float | None = None
    judged_n: int | None = None
    noise_sd: float | None = None
    noise_n: int | None = None
    threshold: float | None = None


def _failure(result: RunResult, tampered: Sequence[str]) -> Verdict | None:
    """The status of a run that did not produce a trustworthy metric, or None if it did."""
    if tampered:
        return Verdict(Status.invalid, f"the run changed protected file(s): {', '.join(tampered)}")
    if result.invalid:
        return Verdict(Status.invalid, result.invalid)
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


def judge_short(
    result: RunResult,
    rung: Sequence[float],
    direction: Direction,
    rules: Rules,
    tampered: Sequence[str] = (),
) -> Verdict:
    """A short run: ``keep`` -- promoted to the full budget -- when its metric ranks among
    the best ``rules.promote`` of ``rung`` (the metrics of the other short runs of the task
    at this budget and hardware class) and itself, at least the best one; else
    ``discard``; a failure (or a metric outside the plausible range: ``invalid``) is never
    promoted. Ties rank together."""
    failed = _failure(result, tampered)
    if failed is not None:
        return failed
    metric = result.metric
    assert metric is not None  # _failure: a run without a metric crashed
    out = _out_of_range(metric, rules)
    if out:
        return Verdict(Status.invalid, f"short run: {out}")
    runs = len(rung) + 1
    rank = 1 + sum(better(other, metric, direction) for other in rung)
    places = max(1, int(runs * rules.promote + 1e-9))  # 6 runs * (1 / 3): 2 places
    where = f"ranks {rank} of {runs} short runs at this budget, the best {places} are promoted"
    if rank <= places:
        return Verdict(Status.keep, f"promoted to the full budget: {where}")
    return Verdict(Status.discard, f"not promoted: {where}")


@dataclass(frozen=True)
class ShortRunAgreement:
    """How the short runs ranked the programs they promoted: Spearman's rank correlation
    between each promoted program's short-run metric and its full run's (``rho``), over
    ``pairs`` programs. The promoted are the short runs' best, so this is their ranking
    among the best, which is what decides whether runs at several budgets pay."""

    rho: float
    pairs: int


MIN_AGREEMENT_PAIRS = 3  # fewer pairs than this tell nothing about a ranking


def short_run_agreement(traces: Sequence[ExperimentPublic]) -> ShortRunAgreement | None:
    """:class:`ShortRunAgreement` over ``traces``: each full run (role experiment) that
    names its promoted short run (``short_id``) among ``traces`` and has a metric, as does
    that short run, is one pair. None with fewer than ``MIN_AGREEMENT_PAIRS`` pairs, or when
    every metric on one side is the same (no ranking to compare)."""
    by_id = {t.id: t for t in traces}
    pairs: list[tuple[float, float]] = []
    for t in traces:
        short = by_id.get(t.short_id) if t.short_id else None
        if t.role != Role.experiment or short is None or short.role != Role.short:
            continue
        if t.metric is not None and short.metric is not None:
            pairs.append((short.metric, t.metric))
    if len(pairs) < MIN_AGREEMENT_PAIRS or any(len({p[i] for p in pairs}) == 1 for i in (0, 1)):
        return None
    from scipy.stats import spearmanr

    shorts, fulls = zip(*pairs, strict=True)
    return ShortRunAgreement(rho=float(spearmanr(shorts, fulls).statistic), pairs=len(pairs))


def _out_of_range(metric: float, rules: Rules) -> str:
    low, high = rules.metric_min, rules.metric_max
    if (low is not None and metric < low) or (high is not None and metric > high):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        return f"{metric:.6g} is outside the plausible range [{lo}, {hi}]"
    return ""


def _verdict(
    status: Status,
    reason: str,
    base: RunStats,
    noise: Noise | None,
    *,
    improvement: float | None = None,
    judged: Sequence[float] = (),
    threshold: float | None = None,
    pending: bool = False,
    suspect: str = "",
) -> Verdict:
    """A verdict that records what it was judged against."""
    return Verdict(
        status,
        reason,
        improvement,
        pending=pending,
        suspect=suspect,
        base_metric=base.mean,
        base_n=base.n,
        judged_metric=fmean(judged) if judged else None,
        judged_n=len(judged) if judged else None,
        noise_sd=noise.sd if noise else None,
        noise_n=noise.n if noise else None,
        threshold=threshold,
    )


def judge_first(
    result: RunResult,
    base: RunStats,
    noise: Noise | None,
    direction: Direction,
    rules: Rules,
    tampered: Sequence[str] = (),
) -> Verdict:
    """Stage 1: a failure, a ``discard``, or a pending candidate (``pending=True``). Without
    confirmation, the final single-run verdict (suspect runs still go to a re-run, or with
    ``rules.suspect_to_finals`` a big step to the finalists)."""
    failed = _failure(result, tampered)
    if failed is not None:
        return failed
    assert result.metric is not None  # _failure returned a crash otherwise
    x = [result.metric]
    g = None if base.mean is None or noise is None else gain(result.metric, base.mean, direction)
    out_of_range, big_step = _out_of_range(result.metric, rules), _big_step(g, noise, rules)
    if big_step and not out_of_range and rules.suspect_to_finals and not rules.confirm:
        why = f"suspect ({big_step}): not kept on one run; left to the finalists' re-measure"
        return _verdict(Status.discard, why, base, noise, improvement=g, judged=x, suspect=big_step)
    suspect = out_of_range or big_step
    if suspect:
        why = f"suspect ({suspect}): re-run before judging"
        return _verdict(
            Status.discard, why, base, noise, improvement=g, judged=x, pending=True, suspect=suspect
        )
    if g is None or noise is None:
        return _verdict(Status.discard, _incomparable(base), base, noise, judged=x)
    if rules.confirm:
        bar = rules.screen * noise.sd
        status, pending = Status.discard, g > bar
        why = (
            f"candidate: better by {g:.6g} (screen {bar:.6g}); confirming with another seed"
            if pending
            else _discard_reason(g, 1, bar, "the screen")
        )
    else:
        bar = noise.margin(1, base.n, rules.alpha)
        status, pending = (Status.keep if g > bar else Status.discard), False
        why = _keep_reason(g, 1, base, bar, noise) if g > bar else _discard_reason(g, 1, bar)
    return _verdict(
        status, why, base, noise, improvement=g, judged=x, threshold=bar, pending=pending
    )


def _big_step(g: float | None, noise: Noise | None, rules: Rules) -> str:
    """Why a one-step gain is suspect: more than ``rules.suspect_sd`` noise sds ("" if not)."""
    if g is not None and noise is not None and g > rules.suspect_sd * noise.sd:
        return f"a gain of {g / noise.sd:.1f} noise sds in one step"
    return ""


def _incomparable(base: RunStats) -> str:
    """Why a run cannot be compared with its base (no base mean or no noise estimate)."""
    why = "the base has no metric" if base.mean is None else "no noise estimate"
    return f"{why} to compare with"


def judge_confirmed(
    first: RunResult,
    second: RunResult,
    base: RunStats,
    noise: Noise | None,
    direction: Direction,
    rules: Rules,
    tampered: Sequence[str] = (),
) -> tuple[Verdict, Verdict]:
    """Stage 2: the verdicts of a candidate's first run and of its confirmation run."""
    assert first.metric is not None, "only a run with a metric is a candidate"
    failed = _failure(second, tampered)
    if failed is not None:
        if failed.status == Status.interrupted:
            why = "not confirmed: the swarm stopped during its confirmation run"
        else:
            why = f"not confirmed: its confirmation run failed ({failed.status.value})"
        return _verdict(Status.discard, why, base, noise, judged=[first.metric]), failed
    assert second.metric is not None
    runs = [first.metric, second.metric]
    outside = [o for o in (_out_of_range(x, rules) for x in runs) if o]
    if outside:
        why = f"implausible metric in {len(outside)} of 2 runs: {outside[0]}"
        both = _verdict(Status.invalid, why, base, noise, judged=runs)
        return both, both
    if base.mean is None or noise is None:
        v = _verdict(Status.discard, _incomparable(base), base, noise, judged=runs)
        return v, v
    g = gain(fmean(runs), base.mean, direction)
    margin = noise.margin(2, base.n, rules.alpha)
    status = Status.keep if g > margin else Status.discard
    why = _keep_reason(g, 2, base, margin, noise) if g > margin else _discard_reason(g, 2, margin)
    v = _verdict(status, why, base, noise, improvement=g, judged=runs, threshold=margin)
    return v, replace(v, improvement=gain(second.metric, base.mean, direction))


def _keep_reason(g: float, runs: int, base: RunStats, margin: float, noise: Noise) -> str:
    what = "its run" if runs == 1 else f"the mean of its {runs} runs"
    return (
        f"{what} beat the base's mean ({base.n} runs) by {g:.6g} > {margin:.6g} "
        f"(noise sd {noise.sd:.6g} from {noise.n} runs)"
    )


def _discard_reason(g: float, runs: int, margin: float, against: str = "the margin") -> str:
    what = "its run" if runs == 1 else f"the mean of its {runs} runs"
    if g <= 0:
        return f"{what} was not better than the base ({-g:.6g} worse)"
    return f"{what} was better by {g:.6g}, not more than {against} {margin:.6g}"


def clearly_better(a: RunStats, b: RunStats, noise: Noise | None, direction: Direction) -> bool:
    """True if program ``a`` beats program ``b`` beyond the noise (``memory.models.beats``,
    the champion's rule, with their means and runs and the noise a verdict uses; with no
    noise estimate, by anything): when an agent moves onto the champion, and when a
    failure measured on ``b`` is stale."""
    sd, df, known = (noise.sd, noise.df, noise.floored) if noise is not None else (None, 0, False)
    return beats(a.mean, a.n, b.mean, b.n, direction, sd, df, known=known)


def best_rival(others: Iterable[RunStats], direction: Direction) -> RunStats | None:
    """The program a newly kept one must beat to contend: the best mean among ``others``
    measured at least ``RIVAL_RUNS`` times (the champion's included), or ``None``."""
    best: RunStats | None = None
    for o in others:
        if o.mean is not None and o.n >= RIVAL_RUNS:
            if best is None or better(o.mean, best.mean, direction):
                best = o
    return best


def contends(kept: Sequence[float], rival: RunStats | None, direction: Direction) -> bool:
    """True if a newly kept program, by the mean of its ``kept`` runs (its first run and
    confirmation), is better by anything than its ``best_rival``'s mean over its measured
    runs: only such a program is re-measured, as only such a one can become the champion.
    Without a rival (or one without a mean) every keep contends."""
    if rival is None or rival.mean is None or not kept:
        return True
    return better(fmean(kept), rival.mean, direction)
