"""The landscape task reproduces its recorded real runs within noise, keeps their crash
regions, and its numpy export equals the scikit-learn models it was fitted as."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import evaluate  # noqa: E402  (benchmarks/landscape on sys.path via conftest)
import fit_landscape  # noqa: E402
import numpy as np
import pytest
import space  # noqa: E402

from tests.benchmarks.conftest import LANDSCAPE

RUNS = fit_landscape.load_runs(LANDSCAPE / "runs.jsonl")
SURROGATE = json.loads((LANDSCAPE / "surrogate.json").read_text(encoding="utf-8"))
# the short runs' landscape (multi-fidelity): real 1.5 s runs and their own surrogate
SHORT_RUNS = fit_landscape.load_runs(LANDSCAPE / "runs-1.5s.jsonl")
SHORT = json.loads((LANDSCAPE / "surrogate-1.5s.json").read_text(encoding="utf-8"))


def write_knobs(task: Path, config: dict[str, float]) -> None:
    lines = [f"{name} = {config[name]!r}" for name in space.NAMES]
    (task / "knobs.py").write_text("\n".join(lines) + "\n", encoding="utf-8")


def run_eval(task: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "evaluate.py"],
        cwd=task,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **(env or {})},
    )


def summary(stdout: str) -> dict[str, str]:
    tail = stdout.split("\n---\n")[-1]
    return dict(re.findall(r"^(\w+): (.+)$", tail, flags=re.MULTILINE))


def test_shipped_runs_are_many_and_real() -> None:
    prov = SURROGATE["provenance"]
    assert prov["runs"] == len(RUNS) >= 300
    assert prov["best_real"] == min(r["val_bpb"] for r in RUNS if r["status"] == "ok")
    # the probe rounds are recorded, and the last one landed closer than the first
    rounds = prov["probe_error"]
    assert rounds == fit_landscape.probe_error(RUNS) and len(rounds) >= 2
    assert rounds[-1]["rmse"] < rounds[0]["rmse"]
    assert prov["crashed"] == sum(r["status"] == "crash" for r in RUNS) >= 1
    assert prov["replicates"] >= 3
    assert 0 < SURROGATE["noise_sd"] < 0.5
    # every recorded crash is a real divergence or failure of train.py, with its stderr
    for r in RUNS:
        if r["status"] == "crash":
            assert r["returncode"] != 0 and r["stderr_tail"]


def test_mean_reproduces_every_finished_real_run_within_noise() -> None:
    s = evaluate.Surrogate(SURROGATE)
    ok = [r for r in RUNS if r["status"] == "ok"]
    pred = s.mean(s.features([r["config"] for r in ok]))
    real = np.array([r["val_bpb"] for r in ok])
    err = np.abs(pred - real)
    noise = SURROGATE["noise_sd"]
    # a Gaussian process with the replicate noise on its diagonal: residuals at the recorded
    # runs are of the size of that noise
    assert np.quantile(err, 0.9) <= 3 * noise, (np.quantile(err, 0.9), noise)
    assert err.max() <= 6 * noise, (err.max(), noise)


def test_evaluator_subprocess_matches_real_runs_and_crashes(landscape_copy: Path) -> None:
    noise = SURROGATE["noise_sd"]
    ok = [r for r in RUNS if r["status"] == "ok"][:6]
    for r in ok:
        write_knobs(landscape_copy, r["config"])
        proc = run_eval(landscape_copy)
        assert proc.returncode == 0, proc.stderr
        got = float(summary(proc.stdout)["val_bpb"])
        assert abs(got - r["val_bpb"]) <= 6 * noise, (got, r)
    for r in [r for r in RUNS if r["status"] == "crash"]:
        write_knobs(landscape_copy, r["config"])
        proc = run_eval(landscape_copy)
        assert proc.returncode == 1, (r, proc.stdout)
        assert "---" not in proc.stdout.splitlines()
        assert "FAIL" in proc.stderr


def test_noise_is_seeded_and_replicates_differ(landscape_copy: Path) -> None:
    write_knobs(landscape_copy, dict(space.DEFAULTS, DEPTH_CPU=3, WIDTH_CPU=128))
    a = [float(summary(run_eval(landscape_copy).stdout)["val_bpb"]) for _ in range(3)]
    assert len(set(a)) == 3  # replicate runs of one program differ, like real ones
    (landscape_copy / evaluate.COUNTS).unlink()
    b = [float(summary(run_eval(landscape_copy).stdout)["val_bpb"]) for _ in range(3)]
    assert a == b  # same seed, directory and history: the same draws
    (landscape_copy / evaluate.COUNTS).unlink()
    c = float(summary(run_eval(landscape_copy, {"LANDSCAPE_SEED": "7"}).stdout)["val_bpb"])
    assert c != a[0]


def test_trainer_refusals_crash_like_train_py(landscape_copy: Path) -> None:
    write_knobs(landscape_copy, dict(space.DEFAULTS, DEPTH_CPU=3, WIDTH_CPU=100))
    proc = run_eval(landscape_copy)
    assert proc.returncode == 1 and "must split into N_HEAD=4" in proc.stderr


def test_bad_knobs_file_names_file_and_line(landscape_copy: Path) -> None:
    knobs = landscape_copy / "knobs.py"
    text = re.sub(
        r"^HEAD_LR = [0-9.e-]+", "HEAD_LR = 0.01 +", knobs.read_text(encoding="utf-8"), flags=re.M
    )
    knobs.write_text(text, encoding="utf-8")
    proc = run_eval(landscape_copy)
    line = next(i for i, ln in enumerate(text.splitlines(), 1) if ln.startswith("HEAD_LR"))
    assert proc.returncode == 2
    assert f"knobs.py:{line}" in proc.stderr
    assert knobs.read_text(encoding="utf-8") == text  # nothing rewritten
    knobs.write_text("MATRIX_LR = 0.04\n", encoding="utf-8")
    proc = run_eval(landscape_copy)
    assert proc.returncode == 2 and "missing knob(s) EMBED_LR" in proc.stderr
    knobs.write_text(text.replace("HEAD_LR = 0.01 +", 'HEAD_LR = "big"'), encoding="utf-8")
    proc = run_eval(landscape_copy)
    assert proc.returncode == 2 and "HEAD_LR must be a number" in proc.stderr


def test_bad_surrogate_file_is_named(landscape_copy: Path) -> None:
    path = landscape_copy / "surrogate.json"
    path.write_text('{"version": 1,\n "dims": [', encoding="utf-8")
    proc = run_eval(landscape_copy)
    assert proc.returncode == 2 and "surrogate.json:2: not JSON" in proc.stderr
    assert path.read_text(encoding="utf-8") == '{"version": 1,\n "dims": ['


def test_bad_runs_line_is_named_and_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    good = (LANDSCAPE / "runs.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    text = "\n".join([*good, '{"index": 99, "status": "ok", "config": {}}']) + "\n"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=r"runs.jsonl:4: not a run record"):
        fit_landscape.load_runs(path)
    assert path.read_text(encoding="utf-8") == text


def test_short_runs_are_real_runs_at_1_5_s_paired_with_the_3_s_runs() -> None:
    """The 1.5 s landscape: the planned samples and the 3 s probe rounds' configurations,
    run for real at 1.5 s; where both budgets finished, they rank configurations alike."""
    from scipy.stats import spearmanr

    assert SHORT["provenance"]["runs"] == len(SHORT_RUNS) >= 200
    assert all(r["budget"] == 1.5 for r in SHORT_RUNS)
    full = {(r["kind"], r["index"]): r for r in RUNS}
    paired = [(full[(r["kind"], r["index"])], r) for r in SHORT_RUNS if r["kind"] != "replicate"]
    assert len(paired) == len(SHORT_RUNS) - SHORT["provenance"]["replicates"]
    assert all(a["config"] == b["config"] for a, b in paired)
    both = [(a["val_bpb"], b["val_bpb"]) for a, b in paired if a["status"] == b["status"] == "ok"]
    rho = spearmanr([a for a, _ in both], [b for _, b in both]).statistic
    assert rho > 0.8, rho  # measured 0.9 over every pair, 0.84 over the probes
    # short runs are noisier: fewer steps, and the first ones weigh more
    assert SHORT["noise_sd"] > SURROGATE["noise_sd"]


@pytest.mark.parametrize(
    ("runs", "surrogate"), [(RUNS, SURROGATE), (SHORT_RUNS, SHORT)], ids=["3s", "1.5s"]
)
def test_shipped_surrogate_is_the_fit_of_the_shipped_runs(runs: list, surrogate: dict) -> None:
    """Refit with scikit-learn: the shipped export is that fit (same data, same kernel
    hyperparameters, same predictions), and numpy predicts what scikit-learn does.

    Tolerances hold across machines (BLAS and the L-BFGS-B optimiser differ in the last
    digits; the GP's dual coefficients ``alpha`` differ by up to ~1e-4 relative between
    machines, so they are not compared directly):
    - the data (encoded knobs, targets) must be the same runs: rtol 1e-9 (float noise only);
    - hyperparameters: rtol 1e-3. L-BFGS-B stops at a relative fall of the log marginal
      likelihood of about 2e-9, which pins the hyperparameters to ~1e-4 relative at worst
      (refits here agree to 2e-8); a surrogate fitted to other runs differs by far more;
    - predictions of the shipped surrogate and the refit at 200 random points: atol 5e-3,
      6 % of the replicate noise sd (0.084). A 1e-3 relative change of every hyperparameter
      moves them by 1.1e-3 at most; float noise is ~1e-12;
    - numpy's export against scikit-learn's own predict, one fitted model: atol 1e-9 (only
      summation order differs).
    """
    export, gp, knn = fit_landscape.fit(runs)
    shipped, refit = surrogate["gp"], export["gp"]
    assert np.allclose(shipped["X"], refit["X"], rtol=1e-9, atol=1e-12)
    assert np.isclose(shipped["y_mean"], refit["y_mean"], rtol=1e-9)
    assert np.isclose(shipped["y_std"], refit["y_std"], rtol=1e-9)
    assert np.isclose(shipped["alpha_diag"], refit["alpha_diag"], rtol=1e-9)
    assert np.allclose(shipped["length_scale"], refit["length_scale"], rtol=1e-3, atol=0)
    assert np.isclose(shipped["amplitude"], refit["amplitude"], rtol=1e-3, atol=0)
    assert surrogate["crash"]["y"] == export["crash"]["y"]
    assert np.allclose(surrogate["crash"]["X"], export["crash"]["X"], rtol=1e-9, atol=1e-12)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(200, len(space.DIMS)))
    assert np.allclose(evaluate.Surrogate(surrogate).mean(x), gp.predict(x), rtol=0, atol=5e-3)
    s = evaluate.Surrogate(export)
    assert np.allclose(s.mean(x), gp.predict(x), rtol=0, atol=1e-9)
    length = np.asarray(refit["length_scale"])
    probs = knn.predict_proba(x / length)
    crash_col = list(knn.classes_).index(1) if 1 in knn.classes_ else None
    expected = probs[:, crash_col] if crash_col is not None else np.zeros(len(x))
    # the same vote, two summation orders: float noise only
    assert np.allclose(s.crash_probability(x), expected, rtol=0, atol=1e-9)


def test_probes_are_the_lowest_safe_and_spread_out() -> None:
    import build_landscape

    s = evaluate.Surrogate(SURROGATE)
    picks = build_landscape.probe_configs(s, 6, seed=0, candidates=2000)
    assert len(picks) == 6
    x = s.features(picks)
    mean = s.mean(x)
    # recomputed here in another batch and order than the picker did: allow float noise
    assert np.all(np.diff(mean) >= -1e-9)  # best first
    assert np.all(s.crash_probability(x) <= 0.5)
    scaled = x / s.length
    gaps = [np.linalg.norm(scaled[i] - scaled[j]) for i in range(6) for j in range(i)]
    assert min(gaps) >= 1.0 - 1e-9
    rng = np.random.default_rng(1)
    others = s.mean(s.features([build_landscape.sample_config(rng) for _ in range(500)]))
    assert mean.max() < np.quantile(others, 0.1)  # far better than a random configuration


def test_probe_records_do_not_count_as_planned_runs() -> None:
    import build_landscape

    records = [
        {"index": 0, "kind": "replicate"},
        {"index": 1, "kind": "sample"},
        {"index": 2, "kind": "probe"},
    ]
    todo = build_landscape.pending(4, 0, records)
    assert [label["index"] for label, _ in todo] == [2, 3]
    assert [cfg for _, cfg in todo] == [cfg for _, cfg in build_landscape.plan(4, 0)[2:]]


def test_probe_error_compares_prediction_with_the_real_run_per_round() -> None:
    runs = [
        {"kind": "probe", "round": 0, "status": "ok", "predicted": 3.0, "val_bpb": 3.5},
        {"kind": "probe", "round": 0, "status": "ok", "predicted": 3.2, "val_bpb": 3.1},
        {"kind": "probe", "round": 0, "status": "crash", "predicted": 3.0, "val_bpb": None},
        {"kind": "probe", "round": 1, "status": "ok", "predicted": 3.4, "val_bpb": 3.3},
        {"kind": "sample", "status": "ok", "val_bpb": 9.0},
    ]
    first, second = fit_landscape.probe_error(runs)
    assert (first["round"], first["probes"], second["probes"]) == (0, 2, 1)
    assert first["rmse"] == pytest.approx(np.sqrt((0.25 + 0.01) / 2))
    assert first["mean_error"] == pytest.approx((-0.5 + 0.1) / 2)
    assert first["best_real"] == 3.1
    assert second["rmse"] == pytest.approx(0.1)
    assert fit_landscape.probe_error(runs[4:]) == []
