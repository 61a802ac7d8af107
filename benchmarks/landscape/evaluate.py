"""Score knobs.py on the landscape: the surrogate of real train.py runs, in milliseconds.

The task's run command (run from this directory)::

    python evaluate.py                       # reads knobs.py, prints the usual summary

Behaves like train.py: a configuration inside a region where real runs diverged (or one
train.py itself refuses, such as a width that does not split into heads) prints a FAIL
line and exits 1 with no summary; otherwise the last lines are ``---`` and ``key: value``
lines, ``val_bpb`` first. The metric is the surrogate's mean plus Gaussian noise of the
spread measured on replicate real runs.

Noise: the draw is seeded by LANDSCAPE_SEED (default 0), the configuration, and one of:

- with LANDSCAPE_CRN_DIR set (common random numbers; the yardstick sets one directory per
  arm and seed): the configuration's *repetition* -- how many times that exact
  configuration was evaluated before, counted in ``counts.json`` there, shared by every
  concurrent evaluator through an fcntl lock. The repetition plays the role of the run
  seed: the same configuration at the same repetition gets the same noise in every arm
  (LABSWARM_SEED and the workspace path take no part);
- else with LABSWARM_SEED set (every labswarm run gets its own): that seed, so two runs of
  one configuration with different seeds differ and a re-run with the same seed repeats;
- else (by hand): a per-directory counter and the directory's path, so replicate runs in
  one or two directories still differ.

Budgets: a run at a budget for which ``surrogate-<budget>s.json`` exists (fitted to real
runs at that budget, e.g. ``surrogate-1.5s.json``) is scored by that surrogate, with its own
noise and crash region and its own repetition counter; every other budget by
``surrogate.json``, fitted to real runs at the task's budget of 3 s.

Variants: a ``landscape.toml`` in the run directory (the task directory's copy) may say
``kind = "flat"`` and ``value = <constant>``: the metric is then that constant plus the
same noise (no configuration is better than another; no divergence region). The log's
``landscape: surrogate mean`` line always carries the noise-free value (the *true* value).
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import sys
import time
import tomllib
from pathlib import Path

T_START = time.time()

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import space  # noqa: E402

SURROGATE = "surrogate.json"  # fitted to real runs at the task's budget (3 s)
COUNTS = ".landscape_calls.json"  # per-directory evaluation counts (noise seeds)
CRN_ENV = "LANDSCAPE_CRN_DIR"  # a shared repetition counter: common random numbers
CRN_COUNTS = "counts.json"
RUN_SEED_ENV = "LABSWARM_SEED"  # the run's seed, set by labswarm's runner
VARIANT_FILE = "landscape.toml"


class LandscapeError(Exception):
    """knobs.py or surrogate.json cannot be used (the message names the file and line)."""


def read_knobs(path: Path) -> dict[str, float]:
    """The knob values of ``path`` (module-level literal assignments), by AST."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise LandscapeError(f"{path.name}:{exc.lineno}: {exc.msg}") from exc
    values: dict[str, float] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1):
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name) or target.id not in space.NAMES:
            continue
        try:
            value = ast.literal_eval(node.value)
        except ValueError as exc:
            raise LandscapeError(
                f"{path.name}:{node.lineno}: {target.id} must be a number literal"
            ) from exc
        if isinstance(value, str):  # set-valued knobs are strings naming a number
            try:
                value = float(value)
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LandscapeError(f"{path.name}:{node.lineno}: {target.id} must be a number")
        values[target.id] = value
    missing = [n for n in space.NAMES if n not in values]
    if missing:
        raise LandscapeError(f"{path.name}: missing knob(s) {', '.join(missing)}")
    return values


def refused_by_trainer(config: dict[str, float]) -> str | None:
    """Why train.py itself would stop on this configuration, or None."""
    width, depth = config["WIDTH_CPU"], config["DEPTH_CPU"]
    if int(width) != width or int(depth) != depth:
        return "DEPTH_CPU and WIDTH_CPU must be integers"
    if depth < 1:
        return f"DEPTH_CPU={depth}: a model needs at least one block"
    if width < 8 or width % 4 or (width // 4) % 2:
        return f"WIDTH={int(width)} must split into N_HEAD=4 heads of even size"
    for name in ("MATRIX_LR", "EMBED_LR", "HEAD_LR"):
        if config[name] < 0:
            return f"{name}={config[name]}: invalid learning rate"
    if not 0 <= config["WARMDOWN_RATIO"] <= 1:
        return f"WARMDOWN_RATIO={config['WARMDOWN_RATIO']} outside [0, 1]"
    if config["LOGIT_SOFTCAP"] < 0:
        return f"LOGIT_SOFTCAP={config['LOGIT_SOFTCAP']} must be >= 0"
    return None


class Surrogate:
    """The exported models of surrogate.json, evaluated with numpy only."""

    def __init__(self, data: dict) -> None:
        try:
            if data.get("version") != 1:
                raise LandscapeError(f"surrogate.json: version {data.get('version')!r}, expected 1")
            if list(data["dims"]) != list(space.NAMES):
                raise LandscapeError("surrogate.json: dims differ from space.py; rebuild it")
            gp = data["gp"]
            self.X = np.asarray(gp["X"], dtype=float)
            self.alpha = np.asarray(gp["alpha"], dtype=float)
            self.length = np.asarray(gp["length_scale"], dtype=float)
            self.amplitude = float(gp["amplitude"])
            self.y_mean = float(gp["y_mean"])
            self.y_std = float(gp["y_std"])
            crash = data["crash"]
            self.cX = np.asarray(crash["X"], dtype=float)
            self.cy = np.asarray(crash["y"], dtype=float)
            self.k = int(crash["k"])
            self.noise_sd = float(data["noise_sd"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LandscapeError(
                f"surrogate.json: malformed ({type(exc).__name__}: {exc})"
            ) from exc

    @classmethod
    def load(cls, path: Path) -> Surrogate:
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError as exc:
            raise LandscapeError(f"{path}: missing; run build_landscape.py fit") from exc
        except json.JSONDecodeError as exc:
            raise LandscapeError(f"{path.name}:{exc.lineno}: not JSON ({exc.msg})") from exc

    @staticmethod
    def features(configs: list[dict[str, float]]) -> np.ndarray:
        """Encoded configurations, clipped to the range the real runs covered."""
        return np.clip(np.array([space.encode(c) for c in configs], dtype=float), 0.0, 1.0)

    def mean(self, x: np.ndarray) -> np.ndarray:
        """Surrogate mean val_bpb (Matern 5/2 Gaussian process) at encoded points ``x``."""
        d = (x[:, None, :] - self.X[None, :, :]) / self.length
        r = np.sqrt(np.sum(d * d, axis=-1)) * np.sqrt(5.0)
        k = self.amplitude * (1.0 + r + r * r / 3.0) * np.exp(-r)
        return (k @ self.alpha) * self.y_std + self.y_mean

    def crash_probability(self, x: np.ndarray) -> np.ndarray:
        """Distance-weighted vote of the k nearest real runs (length-scale metric)."""
        d = np.sqrt(np.sum(((x[:, None, :] - self.cX[None, :, :]) / self.length) ** 2, axis=-1))
        out = np.empty(len(x))
        for i, row in enumerate(d):
            idx = np.argsort(row, kind="stable")[: self.k]
            dist = row[idx]
            if np.any(dist == 0):
                w = (dist == 0).astype(float)
            else:
                w = 1.0 / dist
            out[i] = float(np.sum(w * self.cy[idx]) / np.sum(w))
        return out


def config_key(config: dict[str, float]) -> str:
    """The configuration as the noise sees it (every knob as a float, sorted)."""
    return json.dumps({k: float(config[k]) for k in space.NAMES}, sort_keys=True)


def next_repetition(key: str, counts_path: Path) -> int:
    """How many times ``key`` was evaluated before under ``counts_path``; counts this one.

    The read-modify-write holds an exclusive fcntl lock on a sibling ``.lock`` file, so
    concurrent evaluators (parallel workers of one arm) never hand out one repetition twice.
    """
    counts_path.parent.mkdir(parents=True, exist_ok=True)
    with open(counts_path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            counts = json.loads(counts_path.read_text(encoding="utf-8"))
            if not isinstance(counts, dict):
                counts = {}
        except (FileNotFoundError, json.JSONDecodeError):
            counts = {}
        n = int(counts.get(key, 0))
        counts[key] = n + 1
        tmp = counts_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(counts), encoding="utf-8")
        tmp.replace(counts_path)
    return n


def noise_draw(seed: int, key: str, repetition: int, place: str = "") -> float:
    """The standard normal draw of one evaluation: a pure function of its arguments.

    ``repetition`` is the CRN repetition, the run seed, or the directory's counter;
    ``place`` is empty under common random numbers, ``LABSWARM_SEED`` when the repetition
    is the run seed, the run directory otherwise (so the three rules never share a draw)."""
    text = f"{seed}|{place}|{key}|{repetition}" if place else f"{seed}|{key}|{repetition}"
    digest = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
    return float(np.random.default_rng(digest).standard_normal())


def surrogate_path(budget: float) -> Path:
    """The surrogate a run at ``budget`` seconds is scored by: ``surrogate-<budget>s.json``
    where real runs at that budget were fitted (``build_landscape.py fit``), else
    ``surrogate.json`` (the task's own budget; any other budget is scored as if it were
    that one)."""
    own = HERE / budget_surrogate(budget)
    return own if own.exists() else HERE / SURROGATE


def budget_surrogate(budget: float) -> str:
    """The file name of the surrogate fitted to real runs at ``budget`` seconds."""
    return f"surrogate-{budget:g}s.json"


def _noise(config: dict[str, float], directory: Path, tag: str = "") -> float:
    seed = int(os.environ.get("LANDSCAPE_SEED", "0") or 0)
    key = config_key(config) + tag
    crn = os.environ.get(CRN_ENV, "")
    if crn:
        return noise_draw(seed, key, next_repetition(key, Path(crn) / CRN_COUNTS))
    run_seed = os.environ.get(RUN_SEED_ENV, "").strip()
    if run_seed:
        try:
            return noise_draw(seed, key, int(run_seed), RUN_SEED_ENV)
        except ValueError:
            raise LandscapeError(f"{RUN_SEED_ENV}={run_seed!r} is not an integer") from None
    n = next_repetition(key, directory / COUNTS)
    return noise_draw(seed, key, n, str(directory.resolve()))


def read_variant(directory: Path) -> dict[str, float | str]:
    """The run directory's ``landscape.toml`` (``kind`` smooth | flat, ``value``)."""
    path = directory / VARIANT_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"kind": "smooth"}
    except tomllib.TOMLDecodeError as exc:
        raise LandscapeError(f"{VARIANT_FILE}: not TOML ({exc})") from exc
    kind = data.get("kind", "smooth")
    if kind not in ("smooth", "flat"):
        raise LandscapeError(f"{VARIANT_FILE}: kind {kind!r}, expected 'smooth' or 'flat'")
    if kind == "flat" and not isinstance(data.get("value"), int | float):
        raise LandscapeError(f"{VARIANT_FILE}: a flat landscape needs a numeric 'value'")
    return data


def main() -> int:
    cwd = Path.cwd()
    budget = float(os.environ.get("LABSWARM_TIME_BUDGET", "3") or 3)
    fitted = surrogate_path(budget)
    try:
        config = read_knobs(cwd / "knobs.py")
        surrogate = Surrogate.load(fitted)
        variant = read_variant(cwd)
    except LandscapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"landscape config: {json.dumps(config, sort_keys=True)}", flush=True)
    why = refused_by_trainer(config)
    if why:
        print(f"FAIL: {why}", file=sys.stderr)
        return 1
    x = surrogate.features([config])
    if variant["kind"] == "flat":
        mean = float(variant["value"])
    elif surrogate.crash_probability(x)[0] > 0.5:
        print("FAIL: training loss diverged (a region where real runs diverged)", file=sys.stderr)
        return 1
    else:
        mean = float(surrogate.mean(x)[0])
    # a budget with its own surrogate keeps its own repetitions: a configuration's runs at
    # the full budget draw the same noise whether or not it ran at a short budget first
    tag = "" if fitted.name == SURROGATE else f"@{budget:g}s"
    try:
        val_bpb = mean + surrogate.noise_sd * _noise(config, cwd, tag)
    except LandscapeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(
        f"landscape: surrogate mean {mean:.6f}, noise sd {surrogate.noise_sd:.6f}, "
        f"surrogate {fitted.name}"
    )
    print("---")
    print(f"val_bpb: {val_bpb:.6f}")
    print(f"training_seconds: {budget:.1f}")
    print(f"total_seconds: {time.time() - T_START:.3f}")
    print("peak_memory_mb: 0.0")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
