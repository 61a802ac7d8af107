"""benchmarks/handover_rules.py: hand-over rules replayed on recorded runs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import evaluate  # noqa: E402  (benchmarks/landscape on sys.path via conftest)
import handover_rules as hr  # noqa: E402
import pytest
import space  # noqa: E402
import yardstick_arms as arms  # noqa: E402

from tests.benchmarks.conftest import BENCH, LANDSCAPE, REPO

SD = evaluate.Surrogate.load(evaluate.surrogate_path(3.0)).noise_sd


def _run(i: int, lr: float, observed: float, true: float, **kw: object) -> arms.Run:
    config = dict(space.DEFAULTS, MATRIX_LR=lr)
    fields = dict(
        id=f"r{i}", worker="w0", config=config, ok=True, observed=observed, true=true,
        started=10.0 * i, ended=10.0 * i + 2, duration=2.0, candidate=True,
    )  # fmt: skip
    fields.update(kw)
    return arms.Run(**fields)  # type: ignore[arg-type]


def test_a_replayed_run_prints_what_the_landscape_prints(tmp_path: Path) -> None:
    """The replay's fresh runs are the landscape's own: three real evaluations of one
    configuration under common random numbers print the replayed metrics of repetitions
    0, 1 and 2 (to the 6 decimals the evaluator prints)."""
    task = tmp_path / "landscape"
    shutil.copytree(LANDSCAPE, task, ignore=shutil.ignore_patterns("__pycache__", ".landscape_*"))
    config = dict(space.DEFAULTS, MATRIX_LR=0.03)
    (task / "knobs.py").write_text(
        "".join(f"{k} = {v!r}\n" for k, v in config.items()), encoding="utf-8"
    )
    env = dict(os.environ, LANDSCAPE_SEED="7", LANDSCAPE_CRN_DIR=str(tmp_path / "crn"))
    printed, true = [], None
    for _ in range(3):
        proc = subprocess.run(
            [sys.executable, "evaluate.py"], cwd=task, env=env, capture_output=True, text=True,
            timeout=60, check=True,
        )  # fmt: skip
        for line in proc.stdout.splitlines():
            if line.startswith("val_bpb:"):
                printed.append(float(line.split()[1]))
            if line.startswith("landscape: surrogate mean"):
                true = float(line.split()[3].rstrip(","))
    assert true is not None and len(printed) == 3 and len(set(printed)) == 3
    key = evaluate.config_key(config)
    replayed = [hr.replayed_metric(7, key, true, rep, SD) for rep in range(3)]
    assert replayed == pytest.approx(printed, abs=2e-6)


def test_rules_on_hand_made_runs() -> None:
    runs = [
        _run(0, 0.01, observed=3.50, true=3.80),  # lucky: the best single run of the first two
        _run(1, 0.02, observed=3.70, true=3.00),  # truly best, unlucky
        _run(2, 0.03, observed=3.90, true=3.50),
        _run(3, 0.04, observed=3.40, true=3.70),  # after the endgame's E = 2
    ]
    a = arms.ArmSeed("optuna-shared", "smooth", 0, runs, 1.0, start_true=3.9)
    best_observed, best_mean = hr.parse_rule("best-observed", 4), hr.parse_rule("best-mean", 4)
    assert hr.handed(a, best_observed, 4, SD) == 3.70
    assert hr.handed(a, best_observed, 2, SD) == 3.80  # only the first two experiments
    assert hr.handed(a, best_mean, 4, SD) == 3.70
    assert hr.handed(a, hr.parse_rule("recorded", 4), 4, SD) == 3.70  # Optuna's best trial
    # end:2:2:1: the first two configurations, one fresh run each; 0.8 apart in true value
    # (about ten noise sds), the truly best one wins whatever the draws
    end = hr.parse_rule("end:2:2:1", 4)
    assert hr.handed(a, end, 4, SD) == 3.00
    # end:2:1:2: only the best mean of the first two (the lucky one) is re-run
    assert hr.handed(a, hr.parse_rule("end:2:1:2", 4), 4, SD) == 3.80


def test_model_pick_recovers_the_best_without_noise() -> None:
    """With every metric its true value (no noise), the Gaussian process's predicted means
    at the runs are the metrics themselves, so its pick is the best configuration run."""
    trues = [3.9, 3.7, 3.55, 3.6, 3.8, 3.95, 3.65]
    runs = [_run(i, 0.01 + 0.015 * i, observed=t, true=t) for i, t in enumerate(trues)]
    a = arms.ArmSeed("optuna-shared", "smooth", 0, runs, 1.0, start_true=4.0)
    assert hr.handed(a, hr.parse_rule("model", 7), 7, SD) == 3.55


def test_the_model_s_pick_among_re_measured_programs(monkeypatch) -> None:
    """model-remeasured picks, among the configurations with a re-measure run, the one the
    model predicts best -- not the best-predicted of all, nor the best mean; with no
    re-measured configuration it keeps the recorded hand-over."""
    runs = [
        _run(0, 0.01, observed=3.20, true=3.10),  # predicted best, never re-measured
        _run(1, 0.02, observed=3.40, true=3.60),  # re-measured, the better mean
        _run(2, 0.02, observed=3.40, true=3.60, remeasure=True),
        _run(3, 0.03, observed=3.50, true=3.30),  # re-measured, predicted better
        _run(4, 0.03, observed=3.50, true=3.30, remeasure=True),
    ]
    a = arms.ArmSeed("labswarm-shared", "smooth", 0, runs, 1.0, start_true=3.9)
    order = {0.01: 3.0, 0.02: 3.5, 0.03: 3.4}
    monkeypatch.setattr(
        hr, "predicted", lambda g: {k: order[v[0].config["MATRIX_LR"]] for k, v in g.items()}
    )
    rule = hr.parse_rule("model-remeasured", 5)
    assert hr.handed(a, rule, 5, SD) == 3.30
    assert hr.handed(a, hr.parse_rule("model", 5), 5, SD) == 3.10
    assert hr.handed(a, hr.parse_rule("best-mean", 5), 5, SD) == 3.10  # one lucky run
    optuna = arms.ArmSeed("optuna-shared", "smooth", 0, runs[:2], 1.0, start_true=3.9)
    assert hr.handed(optuna, rule, 2, SD) == hr.handed(optuna, hr.parse_rule("recorded", 2), 2, SD)


def test_the_model_endgame_re_runs_what_the_model_ranks_first(monkeypatch) -> None:
    """model-end:E:K:R re-runs the K configurations the Gaussian process ranks best over
    the first E experiments, not the K best means: with the model's ranking fixed, the
    unlucky truly-best configuration is re-run and handed over, where end:2:1:2 re-runs
    the lucky one."""
    runs = [
        _run(0, 0.01, observed=3.50, true=3.80),  # lucky: the best mean of the first two
        _run(1, 0.02, observed=3.70, true=3.00),  # ranked first by the model below
        _run(2, 0.03, observed=3.30, true=3.60),  # after E = 2: never ranked
    ]
    a = arms.ArmSeed("optuna-shared", "smooth", 0, runs, 1.0, start_true=3.9)
    seen: list[int] = []

    def ranking(groups: dict[str, list[arms.Run]]) -> dict[str, float]:
        seen.append(len(groups))
        return {k: 3.0 if runs[0].id not in {r.id for r in v} else 3.9 for k, v in groups.items()}

    monkeypatch.setattr(hr, "predicted", ranking)
    assert hr.handed(a, hr.parse_rule("model-end:2:1:2", 4), 4, SD) == 3.00
    assert seen == [2]  # fitted to the first E experiments' configurations only
    assert hr.handed(a, hr.parse_rule("end:2:1:2", 4), 4, SD) == 3.80


def test_fewer_by_crashes_hands_over_as_many_experiments_earlier_as_crashed() -> None:
    """fewer-by-crashes: a seed with one crash among its 4 experiments hands over what it
    handed after 3; one with none hands over what it recorded; an arm-seed that re-tests is
    left out of the report's rows for this rule (it hands over at its end)."""
    runs = [
        _run(0, 0.01, observed=3.60, true=3.70),
        _run(1, 0.02, observed=3.50, true=3.60),
        _run(2, 0.03, observed=None, true=None, ok=False, candidate=False),  # crashed
        _run(3, 0.04, observed=3.40, true=3.20),  # the best, the last experiment
    ]
    rule = hr.parse_rule("fewer-by-crashes", 4)
    crashed = arms.ArmSeed("optuna-shared", "crash", 0, runs, 1.0, start_true=3.9)
    assert hr.handed(crashed, hr.parse_rule("recorded", 4), 4, SD) == 3.20
    assert hr.handed(crashed, rule, 4, SD) == 3.60  # after 3: the last run not yet made
    clean = arms.ArmSeed("optuna-shared", "crash", 1, [r for r in runs if r.ok], 1.0, 3.9)
    assert hr.handed(clean, rule, 3, SD) == hr.handed(clean, hr.parse_rule("recorded", 3), 3, SD)
    retested = arms.ArmSeed(
        "labswarm-shared", "crash", 0, [*runs[:3], _run(3, 0.02, 3.5, 3.6, remeasure=True)],
        1.0, 3.9,
    )  # fmt: skip
    text = hr.report([crashed, retested], [hr.Rule("recorded"), rule], ["optuna-shared",
                     "labswarm-shared"], 4)  # fmt: skip
    rows = [ln for ln in text.splitlines() if "fewer-by-crashes" in ln]
    assert len(rows) == 1 and rows[0].startswith("| optuna-shared")


def test_bad_rules_are_refused_naming_the_rule() -> None:
    with pytest.raises(hr.RuleError, match=r"E \+ K x R = 80"):
        hr.parse_rule("end:64:8:3", 80)
    with pytest.raises(hr.RuleError, match="whole numbers"):
        hr.parse_rule("end:a:8:2", 80)
    with pytest.raises(hr.RuleError, match="expected recorded"):
        hr.parse_rule("luckiest", 80)
    with pytest.raises(hr.RuleError, match=r"E \+ K x R = 80"):
        hr.parse_rule("model-end:72:4:3", 80)
    cmd = [sys.executable, str(BENCH / "handover_rules.py"), "--rules", "end:10:1:1"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--rules: rule 'end:10:1:1'" in proc.stderr
    cmd = [sys.executable, str(BENCH / "handover_rules.py"), "--raw", "/nonexistent/raw.jsonl"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--raw: neither /nonexistent/raw.jsonl" in proc.stderr


def test_the_shipped_runs_replay_exactly() -> None:
    """Every finished run of the shipped labswarm-shared, optuna-shared and (its own file)
    labswarm-no-confirm arm-seeds is the replay's metric for its repetition: the replayed
    re-runs are the runs those arms would have made."""
    results = BENCH / "results"
    cmd = [
        sys.executable, str(BENCH / "handover_rules.py"), "--check-replay",
        "--raw", str(results / "raw.jsonl"),
        "--raw", str(results / "handover" / "labswarm-no-confirm.jsonl"),
        "--rules", "recorded,end:72:4:2",
        "--arms", "labswarm-no-confirm,labswarm-shared,optuna-shared",
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    check = json.loads(proc.stdout.splitlines()[0])
    assert check["arm_seeds"] == 180 and check["worst_replay_gap"] < 2e-6
    for arm in ("labswarm-no-confirm", "labswarm-shared", "optuna-shared"):
        assert f"| {arm} | end:72:4:2 | 30 |" in proc.stdout
    assert "## smooth" in proc.stdout and "## crash" in proc.stdout
