"""Measures of the memory-value benchmark, computed from the traces the swarms recorded.

Every number here is read back from memory (the traces), not from the swarm's own
counters: what a user could recompute from any swarm's export.

- *experiments*: traces with role ``experiment`` that spent a device (keep, discard,
  crash, timeout), in order of their end.
- *duplicate run*: an experiment whose program (fingerprint) had already run in the same
  arm and seed (by any agent, baselines included). Refused duplicates spend no device and
  are counted apart.
- *run inside a failed region*: an experiment that crashed although an earlier crash of
  the arm lay within distance 1 in the landscape's metric (knobs encoded to [0, 1] and
  divided by the surrogate's length scales), i.e. a repeat of a known failure.
- *best after k experiments*: the lowest val_bpb observed among the first k experiments,
  or the mean of the baseline replicates if lower. Separate swarms (the isolated arm) are
  interleaved round by round, as if they had run side by side.
- *overhead per experiment*: for each agent, the time between the starts of its
  consecutive runs minus the first run's duration: recall, proposal, check, claim,
  record and the workspace, everything but the run itself.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from memory.models import RAN_STATUSES, ExperimentPublic, Role, Status

CONFIG_PREFIX = "landscape config: "
FAILED_REGION_RADIUS = 1.0


def config_of(trace: ExperimentPublic) -> dict[str, float] | None:
    """The knob values the landscape evaluated, read from the run's log tail."""
    for line in (trace.log_tail or "").splitlines():
        if line.startswith(CONFIG_PREFIX):
            try:
                return json.loads(line[len(CONFIG_PREFIX) :])
            except json.JSONDecodeError:
                return None
    return None


def _end(t: ExperimentPublic) -> float:
    when = t.finished_at or t.created_at
    return when.timestamp()


def experiments(traces: Iterable[ExperimentPublic]) -> list[ExperimentPublic]:
    """Experiments that spent a device, in order of their end."""
    ran = [t for t in traces if t.role == Role.experiment and t.status in RAN_STATUSES]
    return sorted(ran, key=_end)


def interleave(groups: Sequence[Sequence[ExperimentPublic]]) -> list[ExperimentPublic]:
    """Experiments of separate swarms as if they had run side by side: round by round
    (each swarm's i-th experiment, then the (i+1)-th...), each swarm in order of end."""
    ordered = [experiments(g) for g in groups]
    out: list[ExperimentPublic] = []
    for i in range(max((len(o) for o in ordered), default=0)):
        out.extend(o[i] for o in ordered if i < len(o))
    return out


def duplicate_runs(baselines: Iterable[ExperimentPublic], exps: Sequence[ExperimentPublic]) -> int:
    """Experiments (in the order given) whose program had already run in the arm, by any
    agent or as a baseline replicate."""
    seen = {t.fingerprint for t in baselines}
    dups = 0
    for t in exps:
        if t.fingerprint in seen:
            dups += 1
        seen.add(t.fingerprint)
    return dups


def refused_duplicates(traces: Iterable[ExperimentPublic]) -> int:
    return sum(1 for t in traces if t.status == Status.duplicate)


class Metric:
    """The landscape's distance: encoded knobs divided by the surrogate's length scales."""

    def __init__(self, landscape: Path) -> None:
        import sys

        sys.path.insert(0, str(landscape))
        import space

        data = json.loads((landscape / "surrogate.json").read_text(encoding="utf-8"))
        self.space = space
        self.length = [float(v) for v in data["gp"]["length_scale"]]

    def point(self, config: dict[str, float]) -> list[float]:
        x = [min(max(v, 0.0), 1.0) for v in self.space.encode(config)]
        return [v / s for v, s in zip(x, self.length, strict=True)]

    @staticmethod
    def distance(a: Sequence[float], b: Sequence[float]) -> float:
        return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def failed_region_runs(exps: Sequence[ExperimentPublic], metric: Metric) -> int:
    """Crashed experiments within FAILED_REGION_RADIUS of an earlier crash of the arm."""
    crashes: list[list[float]] = []
    count = 0
    for t in exps:
        if t.status not in (Status.crash, Status.timeout):
            continue
        cfg = config_of(t)
        if cfg is None:
            continue
        p = metric.point(cfg)
        if any(metric.distance(p, q) <= FAILED_REGION_RADIUS for q in crashes):
            count += 1
        crashes.append(p)
    return count


def best_curve(
    baselines: Iterable[ExperimentPublic], exps: Sequence[ExperimentPublic], total: int
) -> list[float]:
    """Best observed metric after k = 0..total experiments; k = 0 is the mean of the
    baseline replicates (the unmodified program, whatever the number of replicates)."""
    base = [t.metric for t in baselines if t.metric is not None]
    best = statistics.fmean(base) if base else math.inf
    curve = [best]
    for t in exps[:total]:
        if t.metric is not None and t.status in (Status.keep, Status.discard):
            best = min(best, t.metric)
        curve.append(best)
    while len(curve) < total + 1:
        curve.append(curve[-1])
    return curve


def experiments_to_reach(curve: Sequence[float], target: float) -> int | None:
    """First k with curve[k] <= target, or None when the arm never got there."""
    for k, value in enumerate(curve):
        if value <= target:
            return k
    return None


def overheads(traces: Iterable[ExperimentPublic]) -> list[float]:
    """Seconds between an agent's consecutive run starts, minus the earlier run's duration."""
    by_agent: dict[str, list[ExperimentPublic]] = {}
    for t in traces:
        if (
            t.role == Role.experiment
            and t.status in RAN_STATUSES
            and t.started_at is not None
            and t.duration_s is not None
        ):
            by_agent.setdefault(t.agent_id or "", []).append(t)
    out: list[float] = []
    for runs in by_agent.values():
        runs.sort(key=lambda t: t.started_at)  # type: ignore[arg-type, return-value]
        for a, b in zip(runs, runs[1:], strict=False):
            gap = (b.started_at - a.started_at).total_seconds() - (a.duration_s or 0.0)  # type: ignore[operator]
            out.append(max(gap, 0.0))
    return out


def experiments_per_hour(traces: Iterable[ExperimentPublic]) -> float:
    """Experiments per hour from the first experiment's start to the last one's end."""
    exps = [t for t in experiments(traces) if t.started_at is not None]
    if len(exps) < 2:
        return float("nan")
    start = min(t.started_at for t in exps)  # type: ignore[type-var]
    span = max(_end(t) for t in exps) - start.timestamp()  # type: ignore[union-attr]
    return len(exps) / span * 3600 if span > 0 else float("nan")


@dataclass
class Spread:
    """Median and quartiles of a sample (NaN when empty)."""

    median: float
    p25: float
    p75: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float]) -> Spread:
        v = sorted(x for x in values if x is not None and not math.isnan(x))
        if not v:
            return cls(math.nan, math.nan, math.nan, 0)
        if len(v) == 1:
            return cls(v[0], v[0], v[0], 1)
        q = statistics.quantiles(v, n=4, method="inclusive")
        return cls(statistics.median(v), q[0], q[2], len(v))
