"""Fit the landscape's surrogate to recorded real runs and export it for numpy.

Used by ``python benchmarks/build_landscape.py fit``. The regressor is scikit-learn's
GaussianProcessRegressor (constant x Matern 5/2 with one length scale per knob; the noise
fixed to the spread of replicate runs) on the runs that finished; the crash region is a
distance-weighted k-nearest-neighbour vote over all runs (diverged = 1) in the GP's
length-scale metric. Both are written to ``surrogate.json`` in a form
``landscape/evaluate.py`` evaluates without scikit-learn.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

LANDSCAPE = Path(__file__).resolve().parent / "landscape"
sys.path.insert(0, str(LANDSCAPE))

import space  # noqa: E402

log = logging.getLogger(__name__)

CRASH_K = 5


def load_runs(path: Path) -> list[dict[str, Any]]:
    """The run records of ``path``; a malformed line raises naming file and line."""
    runs = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            status = rec["status"]
            config = rec["config"]
            if status not in ("ok", "crash"):
                raise ValueError(f"status {status!r}")
            if status == "ok" and not isinstance(rec["val_bpb"], int | float):
                raise ValueError("ok run without a numeric val_bpb")
            space.encode(config)
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a run record ({exc})") from exc
        runs.append(rec)
    if not runs:
        raise ValueError(f"{path}: no runs")
    return runs


def noise_sd(runs: list[dict[str, Any]]) -> tuple[float, int]:
    """Standard deviation of val_bpb over the finished replicate runs, and their count."""
    reps = [r["val_bpb"] for r in runs if r["kind"] == "replicate" and r["status"] == "ok"]
    if len(reps) < 2:
        raise ValueError(
            f"need at least 2 finished replicate runs to measure noise, got {len(reps)}"
        )
    return statistics.stdev(reps), len(reps)


def fit(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], Any, Any]:
    """Fit both models; return the export and the fitted scikit-learn objects."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern
    from sklearn.neighbors import KNeighborsClassifier

    ok = [r for r in runs if r["status"] == "ok"]
    X = np.clip(np.array([space.encode(r["config"]) for r in ok]), 0.0, 1.0)
    y = np.array([r["val_bpb"] for r in ok])
    sd, n_reps = noise_sd(runs)
    # The noise is not fitted: it is the spread measured on replicate runs (alpha is added
    # to the kernel's diagonal in the normalised target space).
    alpha = max((sd / float(np.std(y))) ** 2, 1e-8) if len(y) > 1 and np.std(y) > 0 else 1e-6
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
        length_scale=np.full(len(space.DIMS), 0.5), length_scale_bounds=(1e-2, 1e2), nu=2.5
    )
    gp = GaussianProcessRegressor(
        kernel, alpha=alpha, normalize_y=True, n_restarts_optimizer=3, random_state=0
    )
    gp.fit(X, y)
    const, matern = gp.kernel_.k1, gp.kernel_.k2
    length = np.atleast_1d(matern.length_scale).astype(float)
    log.info("GP kernel: %s", gp.kernel_)

    Xall = np.clip(np.array([space.encode(r["config"]) for r in runs]), 0.0, 1.0)
    yall = np.array([1 if r["status"] == "crash" else 0 for r in runs])
    knn = KNeighborsClassifier(
        n_neighbors=min(CRASH_K, len(runs)), weights="distance", metric="minkowski", p=2
    )
    knn.fit(Xall / length, yall)
    export = {
        "version": 1,
        "dims": list(space.NAMES),
        "gp": {
            "X": X.tolist(),
            "alpha": np.asarray(gp.alpha_).ravel().tolist(),
            "length_scale": length.tolist(),
            "amplitude": float(const.constant_value),
            "y_mean": float(np.ravel(gp._y_train_mean)[0]),
            "y_std": float(np.ravel(gp._y_train_std)[0]),
            "alpha_diag": alpha,
        },
        "crash": {"X": Xall.tolist(), "y": yall.tolist(), "k": int(knn.n_neighbors)},
        "noise_sd": sd,
        "provenance": {
            "runs": len(runs),
            "finished": len(ok),
            "crashed": int(yall.sum()),
            "replicates": n_reps,
            "budget_s": sorted({r["budget"] for r in runs}),
            "kernel": str(gp.kernel_),
        },
    }
    return export, gp, knn


def cross_validated_error(runs: list[dict[str, Any]], gp: Any, folds: int = 5) -> float:
    """Root-mean-square error on held-out finished runs (k-fold).

    Each fold fits the kernel's hyperparameters again on its own training part, so the
    held-out runs take no part in the fit that predicts them.
    """
    from sklearn.base import clone

    ok = [r for r in runs if r["status"] == "ok"]
    X = np.clip(np.array([space.encode(r["config"]) for r in ok]), 0.0, 1.0)
    y = np.array([r["val_bpb"] for r in ok])
    order = np.random.default_rng(0).permutation(len(ok))
    errs = []
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        model = clone(gp).set_params(n_restarts_optimizer=1)
        model.fit(X[train], y[train])
        errs.extend((model.predict(X[test]) - y[test]).tolist())
    return float(np.sqrt(np.mean(np.square(errs))))


def probe_error(runs: list[dict[str, Any]]) -> list[dict[str, float]]:
    """Per probe round: how far its finished runs landed from what that round's surrogate said.

    A round's error shrinking round after round is the sign that the surrogate has stopped
    inventing optima where agents search.
    """
    rounds: dict[int, list[tuple[float, float]]] = {}
    for r in runs:
        if r.get("kind") == "probe" and r["status"] == "ok" and "predicted" in r:
            rounds.setdefault(int(r.get("round", 0)), []).append((r["predicted"], r["val_bpb"]))
    out = []
    for round_, pairs in sorted(rounds.items()):
        pred, real = np.array(pairs).T
        out.append(
            {
                "round": round_,
                "probes": len(pairs),
                "rmse": float(np.sqrt(np.mean((pred - real) ** 2))),
                "mean_error": float(np.mean(pred - real)),
                "best_real": float(real.min()),
            }
        )
    return out


def fit_and_write(runs_path: Path, out: Path) -> dict[str, Any]:
    """Fit to ``runs_path``, write ``out`` atomically, return the export."""
    runs = load_runs(runs_path)
    export, gp, _ = fit(runs)
    export["provenance"]["cv_rmse"] = cross_validated_error(runs, gp)
    export["provenance"]["probe_error"] = probe_error(runs)
    ok = [r["val_bpb"] for r in runs if r["status"] == "ok"]
    export["provenance"]["best_real"] = min(ok)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(export), encoding="utf-8")
    tmp.replace(out)
    return export
