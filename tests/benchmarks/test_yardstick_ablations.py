"""The yardstick's ablation arms: one arm per switch of the swarm, each ``labswarm-shared``
with exactly that one switch off, registered everywhere an arm is listed, and the switch
reaching the real swarm (its configuration as memory records it)."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import yardstick_arms as arms  # noqa: E402  (benchmarks/ on sys.path via conftest)
import yardstick_report as report  # noqa: E402

from agents.swarm import SwarmConfig
from memory import get_store
from tests.benchmarks.conftest import BENCH, LANDSCAPE, REPO

SWITCHES = {
    "labswarm-no-semantic-recall": "semantic_recall",
    "labswarm-no-near-dup": "refuse_near_duplicates",
    "labswarm-no-insights": "insights",
    "labswarm-no-champion-following": "follow_champion",
}


def test_each_ablation_arm_turns_off_exactly_one_switch() -> None:
    assert arms.ABLATIONS == SWITCHES
    defaults = {f.name: f.default for f in dataclasses.fields(SwarmConfig)}
    shared = arms.swarm_plans("labswarm-shared", 4, 40)
    for arm, switch in SWITCHES.items():
        assert defaults[switch] is True, f"{switch}: a SwarmConfig switch, on by default"
        assert arm in arms.LABSWARM_ARMS and arm in arms.SHARED_MEMORY_ARMS
        assert ("labswarm-shared", arm) in report.PAIRS
        plan = arms.swarm_plans(arm, 4, 40)
        assert [(n, k) for n, k, _ in plan] == [(n, k) for n, k, _ in shared]
        assert [options for _, _, options in plan] == [{switch: False}]
    help_text = subprocess.run(
        [sys.executable, str(BENCH / "yardstick.py"), "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert all(arm in help_text.replace("\n", "").replace(" ", "") for arm in SWITCHES)
    docs = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    assert all(f"`{arm}`" in docs and f"{switch}=False" in docs for arm, switch in SWITCHES.items())


def test_an_arm_that_re_tests_at_its_end_gives_the_finals_runs_out_of_its_total() -> None:
    # the default at 8 agents re-tests at its end: 4 finalists x 2 runs after 8 x 9
    assert arms.swarm_plans("labswarm-shared", 8, 80) == [(8, 9, {})]
    assert arms.swarm_plans("labswarm-finalists", 8, 80)[0][:2] == (8, 9)
    assert arms.swarm_plans("labswarm-single", 8, 80) == [(1, 78, {})]  # one finalist
    # a pack's prior replicates (4 priors x 2 runs) run first: out of the share as well
    assert arms.swarm_plans("labswarm-transfer", 8, 80) == [(8, 8, {})]
    # per-keep arms keep the whole total for their agents
    assert arms.swarm_plans("labswarm-one-run-keep", 8, 80) == [(8, 10, {"confirm": False})]
    assert arms.swarm_plans("labswarm-neighbour", 8, 80) == [(8, 10, {"moves": "neighbour"})]
    # finals that would leave an agent nothing to search: the arm re-tests each keep
    assert arms.swarm_plans("labswarm-isolated", 2, 4) == [(1, 2, {"retest": "each"})] * 2


def test_the_multi_fidelity_arm_is_planned_within_the_others_device_seconds() -> None:
    short = {"short_budget": arms.SHORT_BUDGET}
    # 80 full runs' worth: the finals' 8 full runs, then 8 agents x 12 at the dearest cost
    # a search experiment measured, so the whole swarm stays within 240 device-seconds
    (plan,) = arms.swarm_plans("labswarm-multifidelity", 8, 80)
    assert plan == (8, 12, short)
    finals = 4 * 2 * arms.LANDSCAPE_BUDGET
    assert 8 * 12 * arms.MULTIFIDELITY_DEVICE_S + finals <= 80 * arms.LANDSCAPE_BUDGET
    assert 8 * 13 * arms.MULTIFIDELITY_DEVICE_S + finals > 80 * arms.LANDSCAPE_BUDGET
    assert arms.multifidelity_plan(2, 4) == (2, 1, short)
    # too small for the finals and one experiment each: re-test each keep, twice the runs
    assert arms.multifidelity_plan(8, 8) == (8, 2, {**short, "retest": "each"})


def test_an_ablation_arm_runs_the_real_swarm_with_its_switch_off(tmp_path: Path) -> None:
    work = tmp_path / "work"
    start = 3.9  # only reported back, not used by the arm's runs
    result = arms.run_arm(
        "labswarm-no-champion-following", "smooth", LANDSCAPE, 0, 2, 2, work, start, "hash"
    )
    assert not result.errors and result.experiments
    store = get_store(
        work / "smooth-labswarm-no-champion-following-s0" / "memory-0", embedder="hash"
    )
    try:
        (swarm,) = store.list_swarms()
    finally:
        store.close()
    assert swarm.config["follow_champion"] is False
    for other in set(SWITCHES.values()) - {"follow_champion"}:
        assert swarm.config[other] is True, other


def test_the_transfer_arm_s_pack_comes_from_an_earlier_swarm_of_the_size_asked(
    tmp_path: Path,
) -> None:
    work = tmp_path / "work"
    result = arms.run_arm(
        "labswarm-transfer", "smooth", LANDSCAPE, 0, 2, 4, work, 3.9, "hash", pack_experiments=8
    )
    assert not result.errors and sum(r.replicate for r in result.experiments) == 2
    store = get_store(work / "smooth-labswarm-transfer-s0" / "prior" / "memory", embedder="hash")
    try:
        (swarm,) = store.list_swarms()
        agents = store.list_agents(swarm.id)
    finally:
        store.close()
    # 2 agents x 4 experiments, not half of this swarm's 4; the earlier swarm's budget
    assert [a.experiments for a in agents] == [4, 4]
    assert swarm.config["budget"] == arms.PRIOR_BUDGET
    args = [sys.executable, str(BENCH / "yardstick.py"), "--arms", "labswarm-transfer"]
    bad = subprocess.run([*args, "--pack-experiments", "12"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--pack-experiments 12 must be a positive multiple" in bad.stderr
