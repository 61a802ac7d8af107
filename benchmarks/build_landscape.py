"""Build the landscape task from real runs of the built-in trainer.

Three steps, each rerunnable on its own::

    # 1. run sampled configurations of trainer/train.py for real (appends to runs.jsonl,
    #    resumes where it stopped; replicates of the default configuration measure noise)
    python benchmarks/build_landscape.py collect --runs 300 --budget 3 --jobs 2

    # 2. fit the surrogate to the recorded runs and write benchmarks/landscape/surrogate.json
    python benchmarks/build_landscape.py fit

    # 3. (repeat with 2) run for real the configurations the surrogate rates best, so the
    #    surrogate is corrected where agents will search
    python benchmarks/build_landscape.py probe --runs 16

    # another budget (the short runs of multi-fidelity): sample, then the 3 s probe
    # rounds' configurations at that budget, then its own surrogate
    python benchmarks/build_landscape.py collect --runs 150 --budget 1.5 \
        --out benchmarks/landscape/runs-1.5s.jsonl
    python benchmarks/build_landscape.py pair --budget 1.5 \
        --out benchmarks/landscape/runs-1.5s.jsonl
    python benchmarks/build_landscape.py fit --runs-file benchmarks/landscape/runs-1.5s.jsonl \
        --out benchmarks/landscape/surrogate-1.5s.json

Each real run copies trainer/ to a temporary directory, rewrites the sampled constants of
train.py (only their values, as an agent's edit would), and runs ``python train.py`` with
LABSWARM_TIME_BUDGET, LABSWARM_DEVICE=cpu, LABSWARM_THREADS=1 under ``nice``. Every run is
recorded, diverged ones included: they become the landscape's crash region.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TRAINER = ROOT / "trainer"
LANDSCAPE = ROOT / "benchmarks" / "landscape"
RUNS = LANDSCAPE / "runs.jsonl"
SURROGATE = LANDSCAPE / "surrogate.json"
sys.path.insert(0, str(LANDSCAPE))

import space  # noqa: E402

log = logging.getLogger("build_landscape")

REPLICATE_EVERY = 12  # one replicate of the default configuration per this many runs
_SUMMARY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*):\s*(.+?)\s*$")


# ---------------------------------------------------------------------------
# Sampling
# ---------------------------------------------------------------------------


def sample_config(rng: np.random.Generator) -> dict[str, float]:
    """One configuration drawn uniformly in each knob's (log-)range."""
    config: dict[str, float] = {}
    for dim in space.DIMS:
        if dim.scale == "log":
            config[dim.name] = float(np.exp(rng.uniform(np.log(dim.low), np.log(dim.high))))
        elif dim.scale == "linear":
            config[dim.name] = round(float(rng.uniform(dim.low, dim.high)), 3)
        elif dim.scale == "int":
            config[dim.name] = int(rng.integers(int(dim.low), int(dim.high) + 1))
        else:
            config[dim.name] = dim.choices[int(rng.integers(len(dim.choices)))]
    for dim in space.DIMS:
        if dim.scale == "log":
            config[dim.name] = float(f"{config[dim.name]:.4g}")
        elif dim.scale == "choice" and dim.name == "WIDTH_CPU":
            config[dim.name] = int(config[dim.name])
    return config


def plan(n: int, seed: int) -> list[tuple[str, dict[str, float]]]:
    """The deterministic run plan: (kind, config) pairs, replicates interleaved."""
    rng = np.random.default_rng(seed)
    out: list[tuple[str, dict[str, float]]] = []
    defaults = {
        k: (int(v) if k in ("DEPTH_CPU", "WIDTH_CPU") else v) for k, v in space.DEFAULTS.items()
    }
    for i in range(n):
        if i % REPLICATE_EVERY == 0:
            out.append(("replicate", dict(defaults)))
        else:
            out.append(("sample", sample_config(rng)))
    return out


# ---------------------------------------------------------------------------
# Running one configuration for real
# ---------------------------------------------------------------------------


def rewrite_constants(source: str, config: dict[str, Any]) -> str:
    """Replace the value of each ``NAME = value`` module line of train.py, keeping comments."""
    for name, value in config.items():
        pattern = re.compile(rf"^({re.escape(name)}\s*=\s*)([^#\n]+?)(\s*(#.*)?)$", re.MULTILINE)

        def keep_comment(m: re.Match[str], v: Any = value) -> str:
            return f"{m.group(1)}{v!r}{m.group(3)}"

        new, count = pattern.subn(keep_comment, source)
        if count != 1:
            raise ValueError(f"train.py: constant {name} found {count} times, expected once")
        source = new
    return source


def parse_summary(stdout: str) -> dict[str, str]:
    """The ``key: value`` lines after the last ``---`` line of a run's stdout."""
    lines = stdout.splitlines()
    if "---" not in lines:
        return {}
    last = len(lines) - 1 - lines[::-1].index("---")
    out: dict[str, str] = {}
    for line in lines[last + 1 :]:
        m = _SUMMARY.match(line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def run_config(config: dict[str, Any], budget: float, workdir: Path) -> dict[str, Any]:
    """Run train.py with ``config`` in ``workdir`` (a copy of trainer/); return the record."""
    source = (TRAINER / "train.py").read_text()
    (workdir / "train.py").write_text(rewrite_constants(source, config))
    env = dict(os.environ)
    env.update(
        LABSWARM_TIME_BUDGET=str(budget),
        LABSWARM_DEVICE="cpu",
        LABSWARM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        OMP_WAIT_POLICY="PASSIVE",
        PYTHONUNBUFFERED="1",
    )
    t0 = time.time()
    proc = subprocess.run(
        ["nice", "-n", "10", sys.executable, "train.py"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=budget * 2 + 180,
    )
    wall = time.time() - t0
    summary = parse_summary(proc.stdout)
    metric = summary.get("val_bpb")
    status = "ok" if proc.returncode == 0 and metric is not None else "crash"
    record: dict[str, Any] = {
        "config": config,
        "status": status,
        "returncode": proc.returncode,
        "val_bpb": float(metric) if metric is not None else None,
        "num_steps": int(summary["num_steps"]) if "num_steps" in summary else None,
        "training_seconds": (
            float(summary["training_seconds"]) if "training_seconds" in summary else None
        ),
        "wall_seconds": round(wall, 2),
        "budget": budget,
    }
    if status == "crash":
        record["stderr_tail"] = proc.stderr.strip().splitlines()[-3:]
    return record


def read_records(out: Path) -> list[dict[str, Any]]:
    """The run records already in ``out`` (none when it does not exist)."""
    records = []
    if out.exists():
        for lineno, line in enumerate(out.read_text().splitlines(), 1):
            if line.strip():
                try:
                    rec = json.loads(line)
                    int(rec["index"])
                except (ValueError, KeyError, TypeError) as exc:
                    raise SystemExit(f"{out}:{lineno}: not a run record ({exc})") from exc
                records.append(rec)
    return records


def run_many(
    items: list[tuple[dict[str, Any], dict[str, Any]]], budget: float, jobs: int, out: Path
) -> None:
    """Run each (label, config) for real, ``jobs`` at a time; append each record to ``out``.

    ``label`` (index, kind, ...) goes first in the record. A worker keeps one copy of
    trainer/ for all its runs; the copies are removed at the end, also on Ctrl-C.
    """
    lock = threading.Lock()
    workdirs: list[Path] = []
    local = threading.local()

    def work(item: tuple[dict[str, Any], dict[str, Any]]) -> None:
        label, cfg = item
        if not hasattr(local, "dir"):
            local.dir = Path(tempfile.mkdtemp(prefix="landscape_run_"))
            shutil.copytree(TRAINER, local.dir, dirs_exist_ok=True)
            with lock:
                workdirs.append(local.dir)
        record = {**label, **run_config(cfg, budget, local.dir)}
        with lock:
            with out.open("a") as fh:
                fh.write(json.dumps(record) + "\n")
            log.info(
                "run %s %s %s val_bpb=%s steps=%s wall=%.1fs",
                record["index"],
                record["kind"],
                record["status"],
                record["val_bpb"],
                record["num_steps"],
                record["wall_seconds"],
            )

    try:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            list(pool.map(work, items))
    finally:
        for d in workdirs:
            shutil.rmtree(d, ignore_errors=True)


def pending(
    n: int, seed: int, records: list[dict[str, Any]]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The planned runs (label, config) whose plan index no record holds yet.

    Probe records number their own runs, so they never count as planned runs done.
    """
    done = {int(r["index"]) for r in records if r.get("kind") != "probe"}
    return [
        ({"index": i, "kind": kind}, cfg)
        for i, (kind, cfg) in enumerate(plan(n, seed))
        if i not in done
    ]


def collect(n: int, budget: float, jobs: int, seed: int, out: Path) -> int:
    """Run the planned configurations not yet in ``out``; return how many were run now."""
    todo = pending(n, seed, read_records(out))
    log.info("%d runs planned, %d to run", n, len(todo))
    run_many(todo, budget, jobs, out)
    return len(todo)


# ---------------------------------------------------------------------------
# Probing where the surrogate says the good configurations are
# ---------------------------------------------------------------------------


def probe_configs(
    surrogate: Any, n: int, seed: int, candidates: int = 20000, min_distance: float = 1.0
) -> list[dict[str, float]]:
    """The ``n`` configurations with the lowest surrogate mean among random candidates.

    Candidates the crash vote marks as diverging are dropped, and each pick must lie at
    least ``min_distance`` (encoded knobs over the length scales) from the earlier picks,
    so one round covers several promising regions rather than one point.
    """
    rng = np.random.default_rng(seed)
    configs = [sample_config(rng) for _ in range(candidates)]
    x = surrogate.features(configs)
    mean = surrogate.mean(x)
    safe = surrogate.crash_probability(x) <= 0.5
    picked: list[int] = []
    for i in np.argsort(mean, kind="stable"):
        if not safe[i]:
            continue
        if all(np.linalg.norm((x[i] - x[j]) / surrogate.length) >= min_distance for j in picked):
            picked.append(int(i))
            if len(picked) == n:
                break
    return [configs[i] for i in picked]


def probe(n: int, budget: float, jobs: int, seed: int, out: Path, surrogate_path: Path) -> int:
    """Run for real the ``n`` best configurations the current surrogate predicts.

    Random samples rarely land where training goes well, so a surrogate fitted to them alone
    invents optima between runs. Probe rounds (fit, probe, fit again) put real runs where the
    surrogate is lowest: they correct it exactly where agents will search. Records have kind
    ``probe``, the ``round`` (0 for the first call) and the ``predicted`` mean; ``index``
    continues after the highest probe index in ``out``.
    """
    import evaluate

    surrogate = evaluate.Surrogate.load(surrogate_path)
    probes = [r for r in read_records(out) if r.get("kind") == "probe"]
    first = 1 + max((int(r["index"]) for r in probes), default=-1)
    round_ = 1 + max((int(r.get("round", 0)) for r in probes), default=-1)
    configs = probe_configs(surrogate, n, seed + first)
    if not configs:
        raise SystemExit("probe: every candidate lies in the crash region; nothing to run")
    mean = surrogate.mean(surrogate.features(configs))
    items = []
    for k, (cfg, m) in enumerate(zip(configs, mean, strict=True)):
        label = {"index": first + k, "kind": "probe", "round": round_}
        items.append(({**label, "predicted": round(float(m), 4)}, cfg))
    log.info(
        "probing %d configurations, predicted val_bpb %.3f..%.3f",
        len(configs),
        mean.min(),
        mean.max(),
    )
    run_many(items, budget, jobs, out)
    return len(items)


# ---------------------------------------------------------------------------
# The same configurations at another budget
# ---------------------------------------------------------------------------


def pair(source: Path, kind: str, budget: float, jobs: int, out: Path) -> int:
    """Run for real, at ``budget``, every configuration of kind ``kind`` recorded in
    ``source`` (runs at another budget) that ``out`` does not hold yet: the probe rounds
    of the 3 s landscape sit where agents search, so a surrogate of another budget gets
    real runs there too, paired with the 3 s runs of the same configurations. Records
    keep their source's label (index, kind, round) and ``paired_with`` its budget."""
    done = {(r.get("kind"), int(r["index"])) for r in read_records(out)}
    items = [
        (
            {
                "index": r["index"],
                "kind": r["kind"],
                "round": r.get("round"),
                "paired_with": r["budget"],
            },
            r["config"],
        )
        for r in read_records(source)
        if r.get("kind") == kind and (kind, int(r["index"])) not in done
    ]
    log.info("%d %s configurations of %s to run at %g s", len(items), kind, source.name, budget)
    run_many(items, budget, jobs, out)
    return len(items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect", help="run sampled configurations of train.py for real")
    c.add_argument("--runs", type=int, default=240, help="planned runs (resumes)")
    c.add_argument("--budget", type=float, default=3.0, help="training seconds per run")
    c.add_argument("--jobs", type=int, default=2, help="runs at once (1 thread each)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--out", type=Path, default=RUNS)
    pr = sub.add_parser("probe", help="run for real the configurations the surrogate rates best")
    pr.add_argument("--runs", type=int, default=16, help="configurations to probe this round")
    pr.add_argument("--budget", type=float, default=3.0)
    pr.add_argument("--jobs", type=int, default=2)
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--out", type=Path, default=RUNS)
    pr.add_argument("--surrogate", type=Path, default=SURROGATE)
    pa = sub.add_parser("pair", help="run another budget's recorded configurations at this one")
    pa.add_argument("--source", type=Path, default=RUNS, help="the runs to pair with")
    pa.add_argument("--kind", default="probe", help="which of its runs (default: probe)")
    pa.add_argument("--budget", type=float, required=True)
    pa.add_argument("--jobs", type=int, default=2)
    pa.add_argument("--out", type=Path, required=True)
    f = sub.add_parser("fit", help="fit the surrogate to runs.jsonl, write surrogate.json")
    f.add_argument("--runs-file", type=Path, default=RUNS)
    f.add_argument("--out", type=Path, default=SURROGATE)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.cmd == "collect":
        collect(args.runs, args.budget, args.jobs, args.seed, args.out)
        return 0
    if args.cmd == "probe":
        probe(args.runs, args.budget, args.jobs, args.seed, args.out, args.surrogate)
        return 0
    if args.cmd == "pair":
        pair(args.source, args.kind, args.budget, args.jobs, args.out)
        return 0
    from fit_landscape import fit_and_write

    export = fit_and_write(args.runs_file, args.out)
    p = export["provenance"]
    print(
        f"wrote {args.out}: {p['runs']} runs ({p['finished']} finished, {p['crashed']} crashed), "
        f"noise sd {export['noise_sd']:.4f} from {p['replicates']} replicates, "
        f"5-fold CV RMSE {p['cv_rmse']:.4f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
