"""The yardstick: its quick run fills every table with every arm on every landscape, the
noise is common to all arms, the Optuna arm shares one study, the flat landscape is flat,
the crash landscape crashes where real runs diverged, and the measures on hand-made runs."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import evaluate  # noqa: E402  (benchmarks/landscape on sys.path via conftest)
import fit_landscape  # noqa: E402
import pytest
import space  # noqa: E402
import yardstick  # noqa: E402
import yardstick_arms as arms  # noqa: E402
import yardstick_measures as ym  # noqa: E402
import yardstick_report as rep  # noqa: E402

from agents.baseline import DEFAULT_PRIOR_REPLICATES
from agents.judge import DEFAULT_REMEASURE
from tests.benchmarks.conftest import BENCH, LANDSCAPE, REPO

CRASH = BENCH / "landscape-crash"
FLAT = BENCH / "landscape-flat"
CONFIG_KNOBS = dict(
    MATRIX_LR=0.05, EMBED_LR=0.3, HEAD_LR=0.02, DEPTH_CPU=4, WIDTH_CPU=192,
    WARMDOWN_RATIO=0.5, LOGIT_SOFTCAP=15,
)  # fmt: skip


def write_knobs(task: Path, config: dict[str, float]) -> None:
    lines = [f"{name} = {config[name]!r}" for name in space.NAMES]
    (task / "knobs.py").write_text("\n".join(lines) + "\n", encoding="utf-8")


def evaluate_task(task: Path) -> tuple[float | None, float | None, str]:
    """Run the task's evaluator as the arms do (the task's [env] applied)."""
    t = arms.load_task(task)
    out, _, _ = arms.evaluate_in(t, task, arms.run_env(t))
    _, true, observed = arms.parse_log(out)
    return true, observed, out


def test_quick_run_fills_every_table(tmp_path: Path) -> None:
    out, keep = tmp_path / "results", tmp_path / "work"
    cmd = [sys.executable, str(BENCH / "yardstick.py"), "--quick", "--jobs", "2",
           "--out", str(out), "--keep", str(keep)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = (out / "report.md").read_text(encoding="utf-8")
    assert re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", report)
    assert "yardstick.py --quick" in report and "optuna 5" in report
    for land in yardstick.LANDSCAPES:
        section = report.split(f"## Landscape `{land}`")[1].split("\n## ")[0]
        rows = [ln for ln in section.splitlines() if ln.startswith("| ") and "---" not in ln]
        for arm in arms.ARMS:
            # true value, reach, judge, cost, at equal device-seconds, where it is lost, the
            # best run's fate, the leader
            assert sum(1 for ln in rows if ln.startswith(f"| {arm} |")) == 8, (land, arm)
        empty = [ln for ln in rows if re.search(r"\|\s*(n/a|nan)?\s*\|", ln)]
        assert not empty, (land, empty)
        assert section.count("| labswarm-shared − optuna-shared |") == 1
        # the multi-fidelity arm paired at equal experiments and at equal device-seconds
        head, per = section.split("#### Search per configuration")
        assert head.count("| labswarm-multifidelity − labswarm-shared |") == 2
        # search per configuration: every other arm against labswarm-shared's count
        per, lost = per.split("#### Where the true value is lost")
        lost, fate = lost.split("#### Why the best configuration run")
        fate, leader = fate.split("#### The leader")
        for arm in arms.ARMS:
            if arm != "labswarm-shared":
                assert per.count(f"| {arm} − labswarm-shared |") == 1, (land, arm)
            # the recognition funnel: one row per arm, a number in every cell
            (row,) = [ln for ln in lost.splitlines() if ln.startswith(f"| {arm} | 2 |")]
            assert len(re.findall(r"\| [+-]?\d\.\d{3} ", row)) == 5, row
            # the best run's fate: every seed counted once, as none-better or at one stage
            (row,) = [ln for ln in fate.splitlines() if ln.startswith(f"| {arm} | 2 |")]
            counts = [int(c) for c in row.split("|")[3:9]]
            assert sum(counts) == 2, row
            # the leader: a true value after each checkpoint, and when it reached the target
            (row,) = [ln for ln in leader.splitlines() if ln.startswith(f"| {arm} | 2 |")]
            assert len(re.findall(r"\| \d\.\d{3} \[", row)) == len(rep.checkpoints(4)), row
    assert "| 0 duplicate runs in shared arms |" in report
    assert "false keeps on the flat landscape" in report
    assert "equals the configuration this report hands over" in report and ": yes" in report
    raw = yardstick.load_raw(out / "raw.jsonl")
    assert {(a.landscape, a.arm, a.seed) for a in raw} == {
        (land, arm, s) for land in yardstick.LANDSCAPES for arm in arms.ARMS for s in (0, 1)
    }
    assert not any(a.errors for a in raw)
    assert all(len(a.experiments) == 4 for a in raw if a.arm in arms.OPTUNA_ARMS)
    # a labswarm agent finishes the candidate pair and the re-measures it started at its
    # limit: at most 1 + DEFAULT_REMEASURE runs more per agent (2 agents here)
    most = 4 + 2 * (1 + DEFAULT_REMEASURE)
    # the transfer arm first runs its pack's best configuration on both seats (prior
    # replicates: experiments, beyond the agents' limits)
    prior = max(1, 2 // DEFAULT_PRIOR_REPLICATES) * DEFAULT_PRIOR_REPLICATES
    for a in raw:
        if a.arm in arms.LABSWARM_ARMS:
            extra = prior if a.arm == "labswarm-transfer" else 0
            if a.arm == "labswarm-multifidelity":
                # planned in device-seconds: each search experiment a short run, perhaps
                # promoted to a full run; then one finalist re-measured twice (2 agents)
                agents, each, _ = arms.multifidelity_plan(2, 4)
                least, top = agents * each + 2, 2 * agents * each + 2 + 2
            else:
                least, top = 4 + extra, most + extra
            assert least <= len(a.experiments) <= top, (a.arm, a.landscape)
            assert sum(r.replicate for r in a.experiments) == extra, (a.arm, a.landscape)
            shorts = [r for r in a.experiments if r.short]
            if a.arm != "labswarm-multifidelity":
                assert not shorts and not any(r.promoted for r in a.runs)
                continue
            # short runs at their own budget, scored by the surrogate of real 1.5 s runs;
            # every full experiment was promoted from one, and costs the task's budget
            assert shorts and all(r.budget == arms.SHORT_BUDGET for r in shorts)
            full = [r for r in a.experiments if not r.short and not r.retest]
            assert all(r.promoted and r.budget == a.budget for r in full), a.landscape
            assert ym.device_seconds(a)[-1] < a.budget * len(a.experiments)
    assert (out / "true_vs_experiments.png").stat().st_size > 10000
    # common random numbers through the real swarm: every labswarm arm's two baseline
    # replicates of one seed drew the same two values
    for land in yardstick.LANDSCAPES:
        for seed in (0, 1):
            # (sorted: two agents' replicates may finish in either order)
            draws = {
                tuple(sorted([r.observed for r in a.runs if r.baseline][:2]))  # type: ignore[type-var]
                for a in raw
                if a.landscape == land and a.seed == seed and a.arm in arms.LABSWARM_ARMS
            }
            assert len(draws) == 1, (land, seed, draws)
    # the optuna-shared arm is one study holding trials from every worker
    journal = keep / "smooth-optuna-shared-s0" / "study.journal"
    assert arms.journal_workers(journal) == {"smooth-optuna-shared-s0": {0, 1}}


def test_same_configuration_same_repetition_same_noise_in_two_arms(tmp_path: Path) -> None:
    a = arms.prepare_task(LANDSCAPE, tmp_path / "arm-a", seed=3)
    b = arms.prepare_task(LANDSCAPE, tmp_path / "arm-b", seed=3)
    other_seed = arms.prepare_task(LANDSCAPE, tmp_path / "arm-c", seed=4)
    for task in (a, b, other_seed):
        write_knobs(task, CONFIG_KNOBS)
    first_a, first_b = evaluate_task(a), evaluate_task(b)
    second_a, second_b = evaluate_task(a), evaluate_task(b)
    assert first_a[1] == first_b[1] and second_a[1] == second_b[1]  # repetition 0, 1
    assert first_a[1] != second_a[1]  # a replicate is a new draw
    assert first_a[0] == second_a[0] == first_b[0]  # one true value
    assert evaluate_task(other_seed)[1] != first_a[1]
    # a workspace elsewhere (another path) of arm a continues arm a's repetitions
    ws = tmp_path / "elsewhere" / "agent-7"
    ws.parent.mkdir()
    shutil.copytree(a, ws)
    third_a = evaluate_task(ws)
    fresh = arms.prepare_task(LANDSCAPE, tmp_path / "arm-d", seed=3)
    write_knobs(fresh, CONFIG_KNOBS)
    draws = [evaluate_task(fresh)[1] for _ in range(3)]
    assert draws == [first_a[1], second_a[1], third_a[1]]


def test_a_run_at_a_budget_with_its_own_surrogate_is_scored_by_it(tmp_path: Path) -> None:
    """The short runs of multi-fidelity: a 1.5 s run is scored by the surrogate fitted to
    real 1.5 s runs, with its own repetitions; every other budget by the 3 s one."""
    task = arms.prepare_task(LANDSCAPE, tmp_path / "arm", seed=0)
    write_knobs(task, CONFIG_KNOBS)
    t = arms.load_task(task)
    x = evaluate.Surrogate.features([CONFIG_KNOBS])

    def at(budget: float) -> tuple[float | None, float | None, str]:
        env = {**arms.run_env(t), "LABSWARM_TIME_BUDGET": f"{budget:g}"}
        out, _, _ = arms.evaluate_in(t, task, env)
        _, true, observed = arms.parse_log(out)
        return true, observed, out

    full = evaluate.Surrogate.load(task / "surrogate.json")
    short = evaluate.Surrogate.load(task / "surrogate-1.5s.json")
    true_short, seen_short, out = at(1.5)
    assert "surrogate surrogate-1.5s.json" in out
    assert true_short == pytest.approx(float(short.mean(x)[0]), abs=1e-6)
    draws = []
    for budget in (3, 2):  # the task's budget, and one without a surrogate of its own
        true, observed, out = at(budget)
        assert "surrogate surrogate.json" in out
        assert true == pytest.approx(float(full.mean(x)[0]), abs=1e-6)
        draws.append(observed)
    assert true_short != pytest.approx(true, abs=1e-3)  # two budgets, two landscapes
    # the runs scored by surrogate.json drew repetitions 0 and 1, as in an arm where
    # nothing ran at 1.5 s first (common random numbers hold across the two)
    fresh = arms.prepare_task(LANDSCAPE, tmp_path / "fresh", seed=0)
    write_knobs(fresh, CONFIG_KNOBS)
    assert [evaluate_task(fresh)[1] for _ in range(2)] == draws
    assert seen_short not in draws
    # the crash and flat variants score their short runs by the same file
    for variant in (CRASH, FLAT):
        assert (variant / "surrogate-1.5s.json").resolve() == (LANDSCAPE / "surrogate-1.5s.json")


def test_fidelity_agreement_on_hand_made_values() -> None:
    """The report's short-against-full facts, computed by hand on 20 draws and one crash."""
    import numpy as np

    full = np.arange(1.0, 21.0)
    none = np.zeros(20, dtype=bool)
    same = yardstick.fidelity_agreement(full, full.copy(), none, target=2.0)
    # the best 5 % by short value is draw 1, at the target; draws 1 and 2 reach the
    # target, 0 and 1 of 20 draws score better at the short budget
    assert same == pytest.approx(
        {"short_rank_corr": 1.0, "short_best_at_target": 1.0, "target_short_percentile": 0.025}
    )
    reverse = yardstick.fidelity_agreement(full, -full, none, target=2.0)
    # short ranks draw 20 first (not at the target); draws 1 and 2 have 19 and 18 better
    assert reverse == pytest.approx(
        {"short_rank_corr": -1.0, "short_best_at_target": 0.0, "target_short_percentile": 0.925}
    )
    # a crashed draw counts at neither budget, however good its short value
    crashed = np.append(none, True)
    with_crash = yardstick.fidelity_agreement(
        np.append(full, 0.0), np.append(full, -100.0), crashed, target=2.0
    )
    assert with_crash == pytest.approx(same)


def test_the_landscapes_facts_say_how_well_short_runs_tell_full_ones() -> None:
    """Computed from the box and the two surrogates alone, before any arm runs."""
    smooth = yardstick.landscape_facts(LANDSCAPE)["fidelity"]
    assert smooth is not None and set(smooth) == {
        "short_rank_corr",
        "short_best_at_target",
        "target_short_percentile",
    }
    # scored by the 1.5 s surrogate, not the 3 s one again (that would agree exactly)
    assert -1.0 <= smooth["short_rank_corr"] < 0.99
    assert 0.0 <= smooth["short_best_at_target"] <= 1.0
    assert 0.0 <= smooth["target_short_percentile"] <= 1.0
    assert yardstick.fidelity_cell(smooth).count(" / ") == 2
    assert yardstick.fidelity_cell(None) == "n/a (flat)"


def test_concurrent_evaluators_never_share_a_repetition(tmp_path: Path) -> None:
    task = arms.prepare_task(LANDSCAPE, tmp_path / "arm", seed=0)
    workspaces = []
    for i in range(6):
        ws = tmp_path / f"worker-{i}"
        shutil.copytree(task, ws)
        write_knobs(ws, CONFIG_KNOBS)
        workspaces.append(ws)
    with ThreadPoolExecutor(6) as pool:
        values = list(pool.map(lambda ws: evaluate_task(ws)[1], workspaces))
    counts = json.loads((tmp_path / "arm" / "crn" / evaluate.CRN_COUNTS).read_text())
    assert list(counts.values()) == [6]
    key = evaluate.config_key({k: float(v) for k, v in CONFIG_KNOBS.items()})
    true = evaluate_task(workspaces[0])[0]
    noise_sd = json.loads((LANDSCAPE / "surrogate.json").read_text())["noise_sd"]
    expected = sorted(true + noise_sd * evaluate.noise_draw(0, key, n) for n in range(6))
    # the log prints 6 decimals of the true and the observed value: 1e-6 each
    assert sorted(values) == pytest.approx(expected, abs=2e-6)


def test_flat_landscape_true_value_is_constant(tmp_path: Path) -> None:
    draws = yardstick.sample_box(FLAT, 500, seed=1)
    values, crashed = yardstick.true_values(FLAT, draws)
    assert len({float(v) for v in values}) == 1 and not crashed.any()
    task = arms.prepare_task(FLAT, tmp_path / "flat", seed=0)
    seen = []
    for cfg in draws[:3]:
        write_knobs(task, cfg)
        true, observed, out = evaluate_task(task)
        assert true == values[0] and observed is not None and observed != true, out
        seen.append(observed)
    assert len(set(seen)) == 3  # noise, nothing else
    flat = yardstick.landscape_facts(FLAT)
    assert flat["target"] is None and flat["fidelity"] is None


def _inside(space_: dict, config: dict[str, float]) -> bool:
    from optuna.distributions import CategoricalDistribution

    for name, dist in space_.items():
        v = config[name]
        if isinstance(dist, CategoricalDistribution):
            if v not in [float(c) for c in dist.choices]:
                return False
        elif not dist.low <= v <= dist.high:
            return False
    return True


def test_crash_landscape_crashes_where_its_recorded_runs_diverged(tmp_path: Path) -> None:
    box = arms.search_space(arms.load_task(CRASH))
    runs = fit_landscape.load_runs(LANDSCAPE / "runs.jsonl")
    diverged = [r["config"] for r in runs if r["status"] == "crash" and _inside(box, r["config"])]
    assert len(diverged) >= 3  # the box holds real divergences (task.toml says which)
    task = arms.prepare_task(CRASH, tmp_path / "crash", seed=0)
    for cfg in diverged:
        write_knobs(task, cfg)
        true, observed, out = evaluate_task(task)
        assert observed is None and "FAIL: training loss diverged" in out, cfg
    # and the box is not all crash: the start runs, and ~9.5 % of uniform draws crash
    facts = yardstick.landscape_facts(CRASH)
    assert 0.05 <= facts["box_crash_share"] <= 0.2
    write_knobs(task, evaluate.read_knobs(CRASH / "knobs.py"))
    assert evaluate_task(task)[1] is not None
    # the smooth landscape's box holds none of them
    smooth = arms.search_space(arms.load_task(LANDSCAPE))
    inside = [r for r in runs if r["status"] == "crash" and _inside(smooth, r["config"])]
    assert not inside


DEFAULT = {name: float(space.DEFAULTS[name]) for name in space.NAMES}


def _run(i: int, worker: str = "w0", **kw: object) -> arms.Run:
    config = dict(DEFAULT, MATRIX_LR=0.01 * (i + 1))
    base = dict(
        id=f"r{i}", worker=worker, config=config, ok=True, observed=4.0, true=4.0,
        started=10.0 * i, ended=10.0 * i + 2, duration=2.0,
    )  # fmt: skip
    base.update(kw)
    return arms.Run(**base)  # type: ignore[arg-type]


def test_measures_on_hand_made_runs() -> None:
    cfg = DEFAULT
    c1, c5 = dict(cfg, MATRIX_LR=0.02), dict(cfg, MATRIX_LR=0.06)
    again = {"candidate": True, "retest": True, "remeasure": True}
    runs = [
        _run(0, baseline=True, candidate=True, observed=4.0, true=3.9, config=cfg),
        _run(1, id="r0b", baseline=True, candidate=True, observed=4.0, true=3.9, config=cfg),
        # a keep that is truly worse than its base: a false keep; champion once re-measured
        _run(2, id="r1", candidate=True, kept=True, base_id="r0", observed=3.7, true=3.95,
             config=c1),
        _run(3, id="r1c", candidate=True, retest=True, observed=3.72, true=3.95, config=c1),
        _run(4, id="r1m", observed=3.71, true=3.95, config=c1, **again),
        _run(5, id="r1n", observed=3.73, true=3.95, config=c1, **again),
        # the root's configuration again: a duplicate run, and a missed gain
        _run(6, id="r2", kept=False, base_id="r1", observed=3.8, true=3.9, config=cfg),
        _run(7, id="r3", ok=False, observed=None, true=None, config=dict(cfg, HEAD_LR=0.5)),
        _run(8, id="r4", kept=False, base_id="r1", config=dict(cfg, HEAD_LR=0.51), true=4.2),
        _run(9, id="r5", candidate=True, kept=True, base_id="r1", observed=3.5, true=3.5,
             config=c5),
        _run(10, id="r5c", candidate=True, retest=True, observed=3.5, true=3.5, config=c5),
        _run(11, id="r5m", observed=3.5, true=3.5, config=c5, **again),
        _run(12, id="r5n", observed=3.5, true=3.5, config=c5, **again),
    ]  # fmt: skip
    a = arms.ArmSeed("labswarm-shared", "smooth", 0, runs, 1.0, start_true=3.9)
    # a keep and its confirmation are not a champion (a verdict chose both runs): r1 counts
    # once its two re-measures r1m, r1n are in, r5 with r5m, r5n
    curve = [3.9, 3.9, 3.9, 3.9, 3.95, 3.95, 3.95, 3.95, 3.95, 3.95, 3.95, 3.5]
    assert ym.handed_curve(a, 11) == curve
    assert ym.experiments_to_reach(ym.handed_curve(a, 11), 3.6) == 11
    assert ym.experiments_to_reach(ym.handed_curve(a, 11), 3.4) is None
    assert ym.final_candidate(a, 11).id == "r5"  # type: ignore[union-attr]
    assert ym.final_candidate(a, 10).id == "r1"  # type: ignore[union-attr]
    assert ym.final_candidate(a, 3).id == "r0"  # type: ignore[union-attr]
    # the leader (Store.leader): the best mean however few its runs -- r1 from its first
    # run on (true 3.95, worse than the start's 3.9: one lucky run leads), r5 from its
    # first run (experiment 8), three experiments before the champion rule hands it over
    leader = [3.9, 3.95, 3.95, 3.95, 3.95, 3.95, 3.95, 3.95, 3.5, 3.5, 3.5, 3.5]
    assert ym.leader_curve(a, 11) == leader
    assert ym.experiments_to_reach(ym.leader_curve(a, 11), 3.6) == 8
    # a short run (another budget) never leads; an Optuna arm's leader is its pick
    short = _run(13, id="s1", short=True, observed=3.0, true=3.0, config=dict(cfg, HEAD_LR=0.6))
    with_short = arms.ArmSeed("labswarm-shared", "smooth", 0, [*runs, short], 1.0, 3.9)
    assert ym.leader_curve(with_short, 12) == [*leader, 3.5]
    # ... nor lends a program its true value: c1's short run (true 3.0 at that budget)
    # before r1, the first run of c1 at the full budget (true 3.95)
    c1_short = _run(1, id="s0", short=True, observed=3.0, true=3.0, config=c1)
    short_first = arms.ArmSeed(
        "labswarm-shared", "smooth", 0, [*runs[:2], c1_short, *runs[2:]], 1.0, 3.9
    )
    assert ym.leader_curve(short_first, 12) == [3.9, *leader]
    study = arms.ArmSeed("optuna-shared", "smooth", 0, runs, 1.0, start_true=3.9)
    assert ym.leader_curve(study, 11) == ym.handed_curve(study, 11)
    # a program better than the champion by less than the noise takes the title once it
    # beats the start beyond the noise: the best mean among such programs is the champion
    close = [
        _run(11, id="r5m", observed=3.72, true=3.5, config=c5, **again),
        _run(12, id="r5n", observed=3.71, true=3.5, config=c5, **again),
    ]
    b = arms.ArmSeed("labswarm-shared", "smooth", 0, [*runs[:-2], *close], 1.0, start_true=3.9)
    assert ym.final_candidate(b, 11).id == "r5"  # type: ignore[union-attr]
    # ... and one better than the start only inside the noise never does: r1's re-measures
    # at 3.99 and 3.995 against the start's 4.0
    near = [
        _run(4, id="r1m", observed=3.99, true=3.95, config=c1, **again),
        _run(5, id="r1n", observed=3.995, true=3.95, config=c1, **again),
    ]
    c = arms.ArmSeed("labswarm-shared", "smooth", 0, [*runs[:4], *near], 1.0, start_true=3.9)
    assert ym.final_candidate(c, 4).id == "r0"  # type: ignore[union-attr]
    assert ym.handed_curve(c, 4) == [3.9] * 5
    assert ym.best_observed(a, 11) == 3.5
    # the search alone: r5's configuration is the best run; r1, r2, r3, r4, r5 are tried
    assert ym.best_true_run(a, 11) == 3.5 and ym.best_true_run(a, 7) == 3.9
    assert ym.configurations_tried(a, 11) == 5 and ym.configurations_tried(a, 4) == 1
    # per configuration: the first 4 distinct ones (c1, the root's, two HEAD_LR) hold no
    # better than the baselines' 3.9; the fifth is r5's; re-tests add none
    assert ym.best_true_of_first(a, 4) == 3.9 and ym.best_true_of_first(a, 5) == 3.5
    assert ym.best_true_of_first(a, 0) == 3.9 and ym.best_true_of_first(a, 99) == 3.5
    # r1 and r5 both took the title (in a and in b): none of their re-measures was wasted;
    # in c, r1 never did, so its two are
    assert ym.wasted_remeasures(a, 11) == (4, 0)
    assert ym.wasted_remeasures(b, 11) == (4, 0)
    assert ym.wasted_remeasures(c, 4) == (2, 2)
    # r1 runs at experiment 1 and is handed over at 4 (confirmation, two re-measures); r5
    # runs at 8 and is handed over at 11; in c nothing but the start is ever handed over
    assert ym.handover_lags(a, 11) == [3, 3] and ym.handover_lags(a, 10) == [3]
    assert ym.handover_lags(c, 4) == []
    # the recognition funnel: after 9, r5 is run and kept (with its confirmation) but not
    # yet re-measured, so the best contender is the start and the pick still r1 (3.95,
    # worse than the start: what the champion rule's earlier title costs); after 11 it
    # holds every stage
    assert ym.funnel(a, 9) == ym.Funnel(ran=3.5, kept=3.5, measured=3.9, handed=3.95)
    assert ym.funnel(a, 11) == ym.Funnel(ran=3.5, kept=3.5, measured=3.5, handed=3.5)
    assert ym.funnel(c, 4) == ym.Funnel(ran=3.9, kept=3.9, measured=3.9, handed=3.9)
    # the best run's fate: r5 (true 3.5, first run at experiment 8, 0.45 better than its
    # base r1) is kept after 9, handed after 11; in c no experiment beats the start
    assert ym.best_run_fate(a, 9) == ym.Fate("kept only", 8, pytest.approx(0.45))
    assert ym.best_run_fate(a, 11) == ym.Fate("handed", 8, pytest.approx(0.45))
    assert ym.best_run_fate(c, 4) == ym.Fate(None, None, None)
    # a discard nothing re-ran is screened out; one whose confirmation ran, not confirmed
    lucky = _run(9, id="r5", kept=False, base_id="r1", observed=3.8, true=3.5, config=c5)
    screened = arms.ArmSeed("labswarm-shared", "smooth", 0, [*runs[:9], lucky], 1.0, 3.9)
    assert ym.best_run_fate(screened, 8) == ym.Fate("screened out", 8, pytest.approx(0.45))
    retried = _run(10, id="r5c", retest=True, observed=3.9, true=3.5, config=c5)
    unconfirmed = arms.ArmSeed(
        "labswarm-shared", "smooth", 0, [*runs[:9], lucky, retried], 1.0, start_true=3.9
    )
    assert ym.best_run_fate(unconfirmed, 9) == ym.Fate("not confirmed", 8, pytest.approx(0.45))
    # a contender the champion rule passed over: r5 re-measured at the start's level
    level = [
        _run(11, id="r5m", observed=3.95, true=3.5, config=c5, **again),
        _run(12, id="r5n", observed=3.96, true=3.5, config=c5, **again),
    ]
    passed = arms.ArmSeed("labswarm-shared", "smooth", 0, [*runs[:-2], *level], 1.0, 3.9)
    assert ym.best_run_fate(passed, 11) == ym.Fate("measured", 8, pytest.approx(0.45))
    assert ym.judge_errors(a) == (2, 1, 1)
    assert ym.false_keep_curve(a, 11) == [0] + [1] * 11
    assert ym.duplicate_runs(a) == 1  # r2 reruns the root; the re-tests of r1, r5 are not
    assert ym.crashes(a) == 1
    assert ym.failed_region_runs(a, ym.Metric(LANDSCAPE)) == 1  # r4 next to r3's crash
    assert ym.overheads(a) == [8.0] * 10  # starts 10 s apart, runs of 2 s
    # Optuna hands over its best single trial
    optuna = arms.ArmSeed(
        "random", "smooth", 0, [_run(0, candidate=True, observed=3.0, true=3.1)], 1.0, 3.9
    )
    assert ym.handed_curve(optuna, 1) == [3.9, 3.1]
    assert ym.handover_lags(optuna, 1) == [0]  # handed over by the run that tried it
    assert ym.funnel(optuna, 1) == ym.Funnel(ran=3.1, kept=3.1, measured=3.1, handed=3.1)
    assert ym.best_run_fate(optuna, 1) == ym.Fate("handed", 1, None)
    # Optuna hands over the best observed trial: a truly better one observed worse is
    # measured, not handed
    two = [
        _run(0, candidate=True, observed=3.0, true=3.3),
        _run(1, candidate=True, observed=3.2, true=3.1),
    ]
    assert ym.best_run_fate(arms.ArmSeed("random", "smooth", 0, two, 1.0, 3.9), 2) == ym.Fate(
        "measured", 2, None
    )
    optuna_like = arms.ArmSeed("random", "smooth", 0, runs[6:8], 1.0, start_true=3.9)
    assert ym.handed_curve(optuna_like, 1) == [3.9, 3.9]  # no candidate yet: the start
    assert ym.judge_errors(arms.ArmSeed("random", "smooth", 0, [_run(1)], 1.0, 3.9)) is None
    p = ym.paired([1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2.0, 3.0, 4.0, 5.0, 6.0, 7.5])
    assert (p.n, p.a_better, p.b_better, p.median_diff) == (6, 6, 0, -1.0)
    assert p.p == pytest.approx(0.03125)  # exact two-sided signed-rank, 6 of 6 negative
    assert ym.paired([1.0, 2.0], [1.0, 2.0]).p == 1.0


def test_a_prior_s_replicates_are_experiments_no_verdict_chose() -> None:
    """Two replicates of a prior (run before the agents): experiments, not duplicates of
    each other, and unselected, so the second hands the prior over if it beats the start."""
    prior = dict(DEFAULT, MATRIX_LR=0.09)
    twice = {"candidate": True, "replicate": True, "config": prior, "true": 3.5}
    runs = [
        _run(0, baseline=True, candidate=True, observed=4.0, true=3.9, config=DEFAULT),
        _run(1, baseline=True, candidate=True, observed=4.02, true=3.9, config=DEFAULT),
        _run(2, observed=3.5, **twice),
        _run(3, observed=3.52, **twice),
    ]  # fmt: skip
    a = arms.ArmSeed("labswarm-transfer", "smooth", 0, runs, 1.0, start_true=3.9)
    assert [r.id for r in a.experiments] == ["r2", "r3"]
    assert ym.handed_curve(a, 2) == [3.9, 3.9, 3.5]
    assert ym.duplicate_runs(a) == 0 and ym.handover_lags(a, 2) == [1]
    assert ym.configurations_tried(a, 2) == 1


def test_short_runs_cost_their_budget_and_are_never_handed_over() -> None:
    """Multi-fidelity: a short run (1.5 s) is an experiment that costs 1.5 device-seconds,
    is never a candidate nor evidence of the champion rule (another budget), and the full
    run promoted from it is no duplicate of it."""
    good = dict(DEFAULT, MATRIX_LR=0.09)
    bad = dict(DEFAULT, MATRIX_LR=0.01)
    full = {"config": good, "true": 3.5, "candidate": True}
    again = {**full, "retest": True}
    runs = [
        _run(0, baseline=True, candidate=True, observed=4.0, true=3.9, config=DEFAULT),
        _run(1, baseline=True, candidate=True, observed=4.02, true=3.9, config=DEFAULT),
        # short runs: a good one (promoted) and a bad one; their metrics at 1.5 s are low
        # enough that, were they read as full runs, they would take the title
        _run(2, short=True, budget=1.5, candidate=False, observed=3.0, true=3.2, config=good),
        _run(3, short=True, budget=1.5, candidate=False, observed=3.0, true=3.4, config=bad),
        _run(4, kept=True, base_id="r0", promoted=True, observed=3.5, **full),
        _run(5, observed=3.5, **again),
        _run(6, observed=3.48, remeasure=True, **again),
        _run(7, observed=3.52, remeasure=True, **again),
    ]  # fmt: skip
    a = arms.ArmSeed("labswarm-multifidelity", "smooth", 0, runs, 1.0, start_true=3.9)
    assert ym.device_seconds(a) == [0.0, 1.5, 3.0, 6.0, 9.0, 12.0, 15.0]
    assert ym.within_seconds(a, 5.0) == 2 and ym.within_seconds(a, 15.0) == 6
    assert ym.handed_curve(a, 6) == [3.9] * 6 + [3.5]
    assert ym.seconds_to_reach(a, 3.6, 15.0) == 15.0
    assert ym.seconds_to_reach(a, 3.6, 12.0) is None  # not within 12 device-seconds
    assert ym.best_true_run(a, 6) == 3.5  # the 1.5 s runs' values are another landscape's
    assert ym.duplicate_runs(a) == 0 and ym.configurations_tried(a, 6) == 2


def test_bad_arguments_are_refused() -> None:
    cmd = [sys.executable, str(BENCH / "yardstick.py"), "--workers", "3", "--experiments", "4"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "--experiments 4 must divide by --workers 3" in proc.stderr
    cmd = [sys.executable, str(BENCH / "yardstick.py"), "--landscape-seeds", "bumpy=3"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "'bumpy=3' is not LANDSCAPE=COUNT" in proc.stderr
