"""What each way of handing over costs, replayed on the yardstick's recorded runs.

The yardstick scores the true value of what an arm hands over after a fixed number of
experiments. An arm's search (which configurations it ran) and its hand-over rule (which
of them it names) both decide that value. This script keeps each recorded search as it
was and replays other hand-over rules on it, so the two can be told apart:

- ``recorded``: what the arm handed over (``yardstick_measures.handed_curve``);
- ``best-observed``: the configuration of the lowest single metric among the arm's runs
  (one shared Optuna study's rule: its best trial);
- ``best-mean``: the lowest mean over a configuration's runs (for Optuna arms, whose
  configurations ran once each, the same as ``best-observed``);
- ``model``: the configuration run whose mean a Gaussian process over every finished
  configuration's mean predicts lowest (``agents.surrogate.predicted_means``, the model of
  ``--finalists-by model``, on the knobs encoded as the landscape's surrogate encodes them;
  no run added);
- ``model-remeasured``: the same model, its pick made only among the configurations that
  have re-measure runs (labswarm's finalists, or each keep's re-measured contenders): the
  programs memory's champion rule may crown, ordered by the model instead of by the mean
  of their own runs; an arm-seed with none (Optuna's) keeps its recorded hand-over;
- ``fewer-by-crashes``: the recorded hand-over after as many fewer experiments as the arm
  had crashes among them (a seed with 2 crashes in 80: its hand-over after 78). Its gap to
  ``recorded`` is what the arm's last experiments bought, which is what a search that never
  crashed could have bought with the experiments its crashes took, if returns do not grow
  with more experiments: what the experiments failure handling saves can buy that search.
  Only for arms that hand over at every experiment (Optuna's, random search): an arm-seed
  with re-test runs (labswarm's) hands over at its end, so the rule is not replayed on it;
- ``end:E:K:R`` (E + K x R = the total): a trusted hand-over at the same number of
  experiments -- the arm's first E experiments as recorded, then the K configurations with
  the best mean metric among them run R more times each, and the best mean of those fresh
  runs alone (runs no verdict chose, what memory's champion rule counts,
  ``memory.models.champion_of``) handed over. The fresh runs' metrics are the ones the
  landscape would have printed: its true value plus the noise draw of the configuration's
  next repetitions under common random numbers (``landscape/evaluate.py``), so a
  replayed run is the run that arm would have made.
- ``model-end:E:K:R``: the same, with the K configurations ranked by the Gaussian
  process's predicted mean over the first E experiments (as ``model``) instead of their
  own mean metric; the best mean of the fresh runs alone handed over.

Only the smooth and crash landscapes: on the flat one every configuration has the same
true value, so no rule can differ. The start is left out of the ``end`` rule's pick (on
both landscapes it is worse than any configuration a search hands over; the champion
rule's test against the start would pass every time).

Each rule is compared seed by seed with the arm's recorded hand-over and with
``optuna-shared``'s (Wilcoxon signed-rank, ``yardstick_measures.paired``).

    python benchmarks/handover_rules.py                      # the shipped raw runs
    python benchmarks/handover_rules.py --raw benchmarks/results/raw.jsonl \
        --raw benchmarks/results/handover/labswarm-no-confirm.jsonl \
        --arms labswarm-no-confirm,labswarm-shared,optuna-shared
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE / "landscape"))

import evaluate  # noqa: E402  (benchmarks/landscape)
import yardstick_measures as ym  # noqa: E402
from yardstick import load_raw, raw_file  # noqa: E402
from yardstick_arms import ArmSeed, Run  # noqa: E402
from yardstick_report import table  # noqa: E402

from agents.surrogate import predicted_means  # noqa: E402

LANDSCAPES = ("smooth", "crash")
BASELINE_ARM = "optuna-shared"
DEFAULT_RULES = "recorded,best-observed,best-mean,model,end:64:8:2,end:64:4:4,end:72:4:2"
DEFAULT_ARMS = "labswarm-shared,optuna-shared,random"


NAMED_RULES = (
    "recorded",
    "best-observed",
    "best-mean",
    "model",
    "model-remeasured",
    "fewer-by-crashes",
)


class RuleError(ValueError):
    """A hand-over rule that cannot be read."""


@dataclass(frozen=True)
class Rule:
    name: str
    explore: int = 0  # end: experiments as recorded
    top: int = 0  # end: configurations re-run
    reruns: int = 0  # end: fresh runs of each


def parse_rule(text: str, total: int) -> Rule:
    """A rule from its name (``end:E:K:R`` with E + K x R == ``total``)."""
    if text in NAMED_RULES:
        return Rule(text)
    parts = text.split(":")
    if parts[0] not in ("end", "model-end") or len(parts) != 4:
        raise RuleError(
            f"rule {text!r}: expected {', '.join(NAMED_RULES)}, end:E:K:R or model-end:E:K:R"
        )
    try:
        explore, top, reruns = (int(p) for p in parts[1:])
    except ValueError:
        raise RuleError(f"rule {text!r}: E, K and R must be whole numbers") from None
    if min(explore, top, reruns) < 1 or explore + top * reruns != total:
        raise RuleError(
            f"rule {text!r}: needs E, K, R >= 1 and E + K x R = {total} (the experiments "
            "every arm gets)"
        )
    return Rule(text, explore, top, reruns)


def _finished(a: ArmSeed, total: int) -> list[Run]:
    """The baselines and the first ``total`` experiments that printed a metric at the
    task's budget (short runs are another budget and never handed over)."""
    pool = [r for r in a.runs if r.baseline] + a.experiments[:total]
    return [r for r in pool if r.ok and r.observed is not None and not r.short and r.config]


def _by_config(runs: Sequence[Run]) -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for r in runs:
        assert r.config is not None
        out.setdefault(evaluate.config_key(r.config), []).append(r)
    return out


def _true(runs: Sequence[Run]) -> float:
    value = runs[0].true
    return float(value) if value is not None else math.nan


def _mean(runs: Sequence[Run]) -> float:
    return statistics.fmean(float(r.observed) for r in runs if r.observed is not None)


def replayed_metric(seed: int, key: str, true: float, repetition: int, sd: float) -> float:
    """The metric the landscape prints for the configuration ``key`` at ``repetition``
    under common random numbers (``landscape/evaluate.py``): true value plus noise."""
    return true + sd * evaluate.noise_draw(seed, key, repetition)


def model_pick(groups: dict[str, list[Run]]) -> float:
    """The true value of the configuration whose predicted mean is lowest under a Gaussian
    process fitted to every finished run (:func:`predicted`)."""
    predictions = predicted(groups)
    return _true(groups[min(predictions, key=predictions.__getitem__)])


def predicted(groups: dict[str, list[Run]]) -> dict[str, float]:
    """Each configuration's mean as the finalists' model (``agents.surrogate``, what
    ``--finalists-by model`` ranks by) predicts it, fitted to every configuration's mean,
    the knobs encoded as the landscape's surrogate encodes them."""
    keys = list(groups)
    points = [evaluate.space.encode(groups[k][0].config or {}) for k in keys]
    means = predicted_means(points, [_mean(groups[k]) for k in keys])
    return dict(zip(keys, means, strict=True))


def end_pick(a: ArmSeed, rule: Rule, sd: float) -> float:
    """The ``end:E:K:R`` or ``model-end:E:K:R`` hand-over's true value (module docstring)."""
    groups = _by_config(_finished(a, rule.explore))
    if not groups:
        return a.start_true
    score = predicted(groups) if rule.name.startswith("model-end:") else None
    ranked = sorted(groups, key=lambda k: score[k] if score else _mean(groups[k]))[: rule.top]
    best_key, best_mean = None, math.inf
    for key in ranked:
        runs = groups[key]
        true = _true(runs)
        fresh = [replayed_metric(a.seed, key, true, len(runs) + i, sd) for i in range(rule.reruns)]
        mean = statistics.fmean(fresh)
        if mean < best_mean:
            best_key, best_mean = key, mean
    return _true(groups[best_key]) if best_key is not None else a.start_true


def handed(a: ArmSeed, rule: Rule, total: int, sd: float) -> float:
    """The true value ``a`` hands over after ``total`` experiments under ``rule``."""
    if rule.name == "recorded":
        return ym.handed_curve(a, total)[total]
    if rule.name == "fewer-by-crashes":
        crashed = ym.crashes(a, total)
        return ym.handed_curve(a, total)[total - crashed]
    if rule.explore:
        return end_pick(a, rule, sd)
    groups = _by_config(_finished(a, total))
    if not groups:
        return a.start_true
    if rule.name == "best-observed":
        best = min((r for runs in groups.values() for r in runs), key=lambda r: r.observed or 0)
        return _true(groups[evaluate.config_key(best.config or {})])
    if rule.name == "best-mean":
        return _true(groups[min(groups, key=lambda k: _mean(groups[k]))])
    if rule.name == "model-remeasured":
        crownable = [k for k, runs in groups.items() if any(r.remeasure for r in runs)]
        if not crownable:
            return ym.handed_curve(a, total)[total]
        predictions = predicted(groups)
        return _true(groups[min(crownable, key=predictions.__getitem__)])
    return model_pick(groups)


def retests(a: ArmSeed) -> bool:
    """Whether ``a`` ran re-tests (labswarm's confirmations, re-measures or finals)."""
    return any(r.retest or r.remeasure for r in a.experiments)


def replay_error(a: ArmSeed, sd: float) -> float:
    """The largest gap between the metrics a configuration's runs printed and those
    :func:`replayed_metric` gives for its repetitions 0, 1, ... (both sorted: runs of one
    configuration that started together, such as baseline replicates, may have taken
    their repetitions in either order): ~0 when the replay draws the noise the arm drew."""
    worst = 0.0
    for key, runs in _by_config(_finished(a, len(a.experiments))).items():
        true = _true(runs)
        replayed = sorted(replayed_metric(a.seed, key, true, i, sd) for i in range(len(runs)))
        printed = sorted(float(r.observed or 0.0) for r in runs)
        worst = max(worst, max(abs(x - y) for x, y in zip(replayed, printed, strict=True)))
    return worst


def report(
    arm_seeds: Sequence[ArmSeed], rules: Sequence[Rule], arms: Sequence[str], total: int
) -> str:
    sd = evaluate.Surrogate.load(evaluate.surrogate_path(3.0)).noise_sd
    lines = [
        f"# hand-over rules replayed on recorded runs: true value after {total} experiments",
        f"# landscape noise sd {sd:.4f}; median over seeds; paired: seeds better / worse, "
        "Wilcoxon p",
    ]
    for land in LANDSCAPES:
        by_arm = {
            arm: sorted(
                (a for a in arm_seeds if a.arm == arm and a.landscape == land),
                key=lambda a: a.seed,
            )
            for arm in arms
        }
        base = {a.seed: ym.handed_curve(a, total)[total] for a in by_arm.get(BASELINE_ARM, [])}
        rows = []
        for arm, seeds in by_arm.items():
            if not seeds:
                continue
            own = [ym.handed_curve(a, total)[total] for a in seeds]
            for rule in rules:
                if rule.name == "fewer-by-crashes" and any(retests(a) for a in seeds):
                    continue  # it hands over at its end: nothing to read c experiments earlier
                values = [handed(a, rule, total, sd) for a in seeds]
                vs_own = ym.paired(values, own)
                both = [
                    (v, base[a.seed]) for v, a in zip(values, seeds, strict=True) if a.seed in base
                ]
                vs_base = ym.paired([v for v, _ in both], [b for _, b in both])
                rows.append(
                    [
                        arm,
                        rule.name,
                        len(seeds),
                        f"{statistics.median(values):.3f}",
                        _cell(vs_own) if rule.name != "recorded" else "--",
                        _cell(vs_base) if arm != BASELINE_ARM or rule.name != "recorded" else "--",
                    ]
                )
        if rows:
            lines += [
                "",
                f"## {land}",
                "",
                table(
                    [
                        "arm",
                        "rule",
                        "seeds",
                        "handed true value",
                        "vs its recorded hand-over",
                        f"vs {BASELINE_ARM} recorded",
                    ],
                    rows,
                ),
            ]
    return "\n".join(lines) + "\n"


def _cell(p: ym.Paired) -> str:
    if p.n == 0:
        return "--"
    return f"{p.median_diff:+.3f} ({p.a_better}/{p.b_better}, p = {p.p:.2g})"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--raw",
        type=Path,
        action="append",
        help="a yardstick raw file (or its .gz); again for more (default: the shipped one)",
    )
    ap.add_argument("--arms", default=DEFAULT_ARMS)
    ap.add_argument("--rules", default=DEFAULT_RULES)
    ap.add_argument("--experiments", type=int, default=80)
    ap.add_argument("--check-replay", action="store_true", help="print the replay's worst gap")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        rules = [parse_rule(t.strip(), args.experiments) for t in args.rules.split(",") if t]
    except RuleError as exc:
        print(f"error: --rules: {exc}", file=sys.stderr)
        return 2
    raws = args.raw or [HERE / "results" / "raw.jsonl"]
    for raw in raws:
        if raw_file(raw) is None:
            print(f"error: --raw: neither {raw} nor its .gz exists", file=sys.stderr)
            return 2
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    arm_seeds = [
        a for raw in raws for a in load_raw(raw) if a.arm in arms and a.landscape in LANDSCAPES
    ]
    if args.check_replay:
        sd = evaluate.Surrogate.load(evaluate.surrogate_path(3.0)).noise_sd
        worst = max((replay_error(a, sd) for a in arm_seeds), default=0.0)
        print(json.dumps({"arm_seeds": len(arm_seeds), "worst_replay_gap": worst}))
    print(report(arm_seeds, rules, arms, args.experiments), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
