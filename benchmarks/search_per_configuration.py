"""Two yardstick arms' searches compared apart from their hand-over.

For each seed: the best true value among an arm's first K distinct configurations
(``yardstick_measures.best_true_of_first``: re-tests add none, so an arm that re-tests
is not charged for it here) and, for reference, the true value it handed over after N
experiments; each averaged over the runs given for the arm (re-runs of one arm on the
same seeds), then paired by seed (``yardstick_measures.paired``: Wilcoxon signed-rank)::

    python benchmarks/search_per_configuration.py \\
        --a labswarm-single=benchmarks/results/raw.jsonl \\
        --b optuna-sequential=benchmarks/results/raw.jsonl --landscapes crash --k 10,20,40,60

An arm is ``NAME=FILE[+FILE...]``; a file is a yardstick raw file or, as the shipped
results keep it, its ``.gz``. Only the seeds every given run of both arms holds count.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yardstick  # noqa: E402
import yardstick_measures as ym  # noqa: E402
from yardstick_arms import ArmSeed  # noqa: E402

Runs = list[dict[tuple[str, int], ArmSeed]]  # one dict per run: (landscape, seed) -> arm-seed


class SpecError(ValueError):
    """An arm given on the command line that cannot be read."""


def load_arm(spec: str) -> tuple[str, Runs]:
    """``NAME=FILE[+FILE...]`` -> the arm's name and one run per file."""
    name, sep, files = spec.partition("=")
    if not sep or not name.strip() or not files.strip():
        raise SpecError(f"{spec!r}: expected NAME=FILE[+FILE...]")
    runs: Runs = []
    for f in files.split("+"):
        path = Path(f.strip())
        if yardstick.raw_file(path) is None:
            raise SpecError(f"{name}: {path}: no such file (nor its .gz)")
        found = {(a.landscape, a.seed): a for a in yardstick.load_raw(path) if a.arm == name}
        if not found:
            raise SpecError(f"{name}: {path} holds no arm-seed of arm {name!r}")
        runs.append(found)
    return name.strip(), runs


def per_seed(
    runs: Runs, keys: Sequence[tuple[str, int]], measure: Callable[[ArmSeed], float]
) -> list[float]:
    """The measure of each seed, averaged over the runs."""
    return [statistics.fmean(measure(run[k]) for run in runs) for k in keys]


def compare(a: Runs, b: Runs, landscape: str, ks: Sequence[int], handed: int) -> list[str]:
    keys = sorted(k for k in set.intersection(*(set(r) for r in a + b)) if k[0] == landscape)
    if not keys:
        return [f"{landscape}: no seed that every run of both arms holds"]
    rows = []
    measures: list[tuple[str, Callable[[ArmSeed], float]]] = [
        (
            f"best of the first {k} configurations",
            functools.partial(ym.best_true_of_first, configurations=k),
        )
        for k in ks
    ]
    measures.append((f"handed over after {handed}", lambda s: ym.handed_curve(s, handed)[handed]))
    for label, measure in measures:
        va, vb = per_seed(a, keys, measure), per_seed(b, keys, measure)
        p = ym.paired(va, vb)
        rows.append(
            f"| {landscape} | {label} | {len(keys)} | {statistics.median(va):.3f} | "
            f"{statistics.median(vb):.3f} | {p.a_better} / {p.b_better} | {p.p:.2g} |"
        )
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, help="NAME=FILE[+FILE...]: the first arm")
    ap.add_argument("--b", required=True, help="NAME=FILE[+FILE...]: the arm to pair it with")
    ap.add_argument("--landscapes", default="smooth,crash")
    ap.add_argument("--k", default="20,40,72", help="configuration counts, comma-separated")
    ap.add_argument("--handed", type=int, default=80, help="experiments for the hand-over row")
    args = ap.parse_args(argv)
    try:
        ks = [int(k) for k in args.k.split(",") if k.strip()]
    except ValueError:
        print(f"error: --k: integers separated by commas, got {args.k!r}", file=sys.stderr)
        return 2
    if not ks or min(ks) < 1 or args.handed < 1:
        print("error: --k and --handed: positive counts", file=sys.stderr)
        return 2
    try:
        name_a, a = load_arm(args.a)
        name_b, b = load_arm(args.b)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"a = {name_a} ({len(a)} run(s)), b = {name_b} ({len(b)} run(s)); per seed averaged "
        "over an arm's runs; lower is better\n"
    )
    print("| landscape | measure | seeds | a: median | b: median | seeds a / b better | p |")
    print("|---|---|---|---|---|---|---|")
    for landscape in (x.strip() for x in args.landscapes.split(",") if x.strip()):
        for row in compare(a, b, landscape, ks, args.handed):
            print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
