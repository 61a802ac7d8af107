"""The keep rule's error rates, by simulation of a lineage of experiments.

One agent hill-climbs: its base starts as a root program measured ``--replicates`` times;
each experiment proposes a change whose true effect is drawn from a world (below), runs it
once with Gaussian noise of sd 1, and judges it with the functions the swarm uses
(:func:`agents.judge.judge_first`, :func:`agents.judge.judge_confirmed`; the noise pooled by
:func:`memory.models.pooled_noise` over every program run twice, as ``Store.noise`` does).
A keep moves the base (with the runs that judged it, and ``rules.remeasure`` fresh runs of
the kept program, as the swarm's ``remeasure`` node does).

Worlds (effects in units of the noise sd; gain = better):
- ``flat``: every change has no effect -- every keep is false;
- ``gain-1sd`` / ``gain-2sd``: a change is a real gain of 1 (2) sd with probability 0.2, no
  effect otherwise.

Two settings: *decision by decision* (every change judged against the root: the rule's
error rates as a test) and *in a lineage* (a keep becomes the base, as in a swarm; a false
keep then lifts the bar for later ones). Per rule it prints: false keeps (keeps of a
no-effect change) per no-effect experiment, power (keeps of real gains per real gain
proposed), and device runs per experiment (confirmations and re-measures included).
Rules: the old one (keep a single run better than the base by the max - min of 2
replicates), the new two-stage rule at several screens, with and without re-measuring a
kept program, and without confirmation.

    python benchmarks/keep_rule.py                 # 2000 lineages of 80 experiments each
    python benchmarks/keep_rule.py --lineages 300  # quicker
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from statistics import fmean

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agents.judge import (  # noqa: E402
    ALPHA,
    DEFAULT_REMEASURE,
    DEFAULT_REPLICATES,
    DEFAULT_SCREEN,
    Rules,
    judge_confirmed,
    judge_first,
    noise_used,
)
from agents.runner import RunResult  # noqa: E402
from memory.models import RunStats, Status, pooled_noise  # noqa: E402

WORLDS = {"flat": (0.0, 0.0), "gain-1sd": (1.0, 0.2), "gain-2sd": (2.0, 0.2)}


@dataclass
class Tally:
    null_experiments: int = 0
    false_keeps: int = 0
    gain_experiments: int = 0
    true_keeps: int = 0
    experiments: int = 0
    runs: int = 0

    def decided(self, delta: float, kept: bool) -> None:
        """Count one experiment's verdict: a keep of a real gain, or of a no-effect change."""
        if delta > 0:
            self.gain_experiments += 1
            self.true_keeps += kept
        else:
            self.null_experiments += 1
            self.false_keeps += kept

    def add(self, other: Tally) -> None:
        for name in vars(self):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _ran(x: float) -> RunResult:
    return RunResult(status="ok", returncode=0, metric=x)


def lineage_new(
    rng: np.random.Generator,
    world: str,
    rules: Rules,
    experiments: int,
    replicates: int,
    moving: bool = True,
) -> Tally:
    """One lineage judged by the swarm's rule (``rules``); ``moving=False``: every change
    is judged against the root (the rule's error rates as a test, decision by decision)."""
    effect, share = WORLDS[world]
    true_base = 0.0
    root = list(rng.normal(true_base, 1.0, replicates))
    groups: list[list[float]] = [root]
    base_runs = root
    out = Tally(runs=replicates)
    for _ in range(experiments):
        delta = effect if rng.random() < share else 0.0
        true_x = true_base - delta  # minimize: a gain lowers the metric
        x1 = float(rng.normal(true_x, 1.0))
        out.experiments += 1
        out.runs += 1
        noise = noise_used(pooled_noise(groups), None)
        base = RunStats(mean=fmean(base_runs), n=len(base_runs), sd=None)
        verdict = judge_first(_ran(x1), base, noise, "minimize", rules)
        runs = [x1]
        if verdict.pending:
            x2 = float(rng.normal(true_x, 1.0))
            out.runs += 1
            runs.append(x2)
            groups.append(runs)
            verdict, _ = judge_confirmed(_ran(x1), _ran(x2), base, noise, "minimize", rules)
        kept = verdict.status == Status.keep
        out.decided(delta, kept)
        if kept and moving:
            fresh = [float(v) for v in rng.normal(true_x, 1.0, rules.remeasure)]
            out.runs += len(fresh)
            runs.extend(fresh)  # the same list is the program's noise group
            if not any(g is runs for g in groups):
                groups.append(runs)
            true_base, base_runs = true_x, runs
    return out


def lineage_old(
    rng: np.random.Generator, world: str, experiments: int, moving: bool = True
) -> Tally:
    """The rule of release 0.1.0: noise = max - min of 2 replicates; a single run is kept
    when it beats the base's mean by more than that."""
    effect, share = WORLDS[world]
    true_base = 0.0
    root = list(rng.normal(true_base, 1.0, 2))
    noise = max(root) - min(root)
    base_runs = root
    out = Tally(runs=2)
    for _ in range(experiments):
        delta = effect if rng.random() < share else 0.0
        true_x = true_base - delta
        x = float(rng.normal(true_x, 1.0))
        out.experiments += 1
        out.runs += 1
        kept = fmean(base_runs) - x > noise
        out.decided(delta, kept)
        if kept and moving:
            true_base, base_runs = true_x, [x]
    return out


def simulate(
    world: str,
    rules: Rules | None,
    *,
    lineages: int,
    experiments: int,
    replicates: int = DEFAULT_REPLICATES,
    moving: bool = True,
    seed: int = 0,
) -> list[Tally]:
    """One tally per lineage (``rules=None``: the old rule)."""
    rng = np.random.default_rng([seed, list(WORLDS).index(world), moving])
    if rules is None:
        return [lineage_old(rng, world, experiments, moving) for _ in range(lineages)]
    return [
        lineage_new(rng, world, rules, experiments, replicates, moving) for _ in range(lineages)
    ]


def _rate(num: int, den: int) -> str:
    return f"{num / den:6.1%}" if den else "     -"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lineages", type=int, default=2000)
    ap.add_argument("--experiments", type=int, default=80)
    ap.add_argument("--replicates", type=int, default=DEFAULT_REPLICATES)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    old: dict[str, Rules | None] = {"old (max-min of 2, one run)": None}
    single = {"no confirmation (one run, t-test)": Rules(confirm=False, remeasure=0)}
    # decision by decision the base never moves, so re-measuring plays no part
    by_decision = dict(old)
    for screen in (0.0, 0.5, 1.0):
        mark = " (default)" if screen == DEFAULT_SCREEN else ""
        by_decision[f"confirm, screen {screen:g}{mark}"] = Rules(screen=screen)
    by_decision.update(single)
    in_lineage = dict(old)
    for screen, again in ((DEFAULT_SCREEN, 0), (DEFAULT_SCREEN, 1), (DEFAULT_SCREEN, 2), (0.5, 1)):
        mark = " (default)" if (screen, again) == (DEFAULT_SCREEN, DEFAULT_REMEASURE) else ""
        in_lineage[f"confirm, screen {screen:g}, remeasure {again}{mark}"] = Rules(
            screen=screen, remeasure=again
        )
    in_lineage.update(single)
    print(
        f"# keep rule by simulation: {args.lineages} lineages x {args.experiments} experiments, "
        f"{args.replicates} root replicates, alpha {ALPHA}, seed {args.seed}"
    )
    for moving, rules in ((False, by_decision), (True, in_lineage)):
        print()
        if moving:
            print("## In a lineage: a keep becomes the base (what a swarm's agent does)")
        else:
            print("## Decision by decision: every change judged against the root")
        print(f"{'rule':<44} {'world':<9} {'false keeps':>11} {'power':>7} {'runs/exp':>9}")
        for name, rule in rules.items():
            for world in WORLDS:
                total = Tally()
                for one in simulate(
                    world,
                    rule,
                    lineages=args.lineages,
                    experiments=args.experiments,
                    replicates=args.replicates,
                    moving=moving,
                    seed=args.seed,
                ):
                    total.add(one)
                print(
                    f"{name:<44} {world:<9} "
                    f"{_rate(total.false_keeps, total.null_experiments):>11} "
                    f"{_rate(total.true_keeps, total.gain_experiments):>7} "
                    f"{total.runs / total.experiments:9.2f}"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
