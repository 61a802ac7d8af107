"""What ranking a swarm's finalists by a model costs: the wall time of one
``agents.surrogate.predicted_means`` call (the Gaussian process ``--finalists-by model``
fits once, after the agents finish) for swarms of a few hundred to a few thousand measured
programs, one point each.

The points are the landscape's seven knobs drawn at random in the unit cube, the means a
smooth function of them plus noise: the cost of a fit depends on the number of points and
knobs (the kernel matrix is n x n; each step of the optimiser factorises it), not on what
the metric is.

    .venv/bin/python benchmarks/finalists_model.py                 # 100, 300, 1000, 3000
    .venv/bin/python benchmarks/finalists_model.py --programs 100,500 --knobs 12
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from agents.surrogate import predicted_means  # noqa: E402


def programs(n: int, knobs: int, seed: int) -> tuple[list[list[float]], list[float]]:
    """``n`` random points of ``knobs`` features and their noisy bowl values."""
    rng = random.Random(seed)
    points = [[rng.random() for _ in range(knobs)] for _ in range(n)]
    means = [
        3.5 + sum((x - 0.4) ** 2 for x in p) + 0.3 * math.sin(5 * p[0]) + rng.gauss(0, 0.08)
        for p in points
    ]
    return points, means


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--programs", default="100,300,1000,3000", help="comma-separated counts")
    p.add_argument("--knobs", type=int, default=7, help="features per program (default 7)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    predicted_means(*programs(20, args.knobs, args.seed))  # scikit-learn imported here
    print("| programs | knobs | fit and predict, s |")
    print("|---|---|---|")
    for n in (int(v) for v in args.programs.split(",")):
        points, means = programs(n, args.knobs, args.seed)
        start = time.perf_counter()
        predicted_means(points, means)
        print(f"| {n} | {args.knobs} | {time.perf_counter() - start:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
