"""Finalists: after its agents finish, a swarm re-measures its best programs (by the mean
of their runs, whatever the verdict on their first run) twice each, runs no verdict chose,
so memory's champion rule hands over the best of them."""

from __future__ import annotations

import json
import logging
import math
import random
from dataclasses import asdict
from statistics import fmean

import pytest

from agents.baseline import finalists
from agents.cluster.driver import ClusterSwarm
from agents.cluster.options import ClusterConfig
from agents.devices import cpu_devices
from agents.knobs import knob_values, set_knobs
from agents.program import Program
from agents.proposers.builtin import describe_space, search_space
from agents.surrogate import encode, predicted_means
from agents.swarm import (
    Swarm,
    SwarmConfig,
    SwarmError,
    SwarmHome,
    resolve_retest,
    small_plan_warning,
)
from agents.task import load_task
from agents.tracing import Author
from memory.models import Role, Status, TraceQuery
from tests.agents.conftest import QUAD_TRAIN, make_task


def _config(tmp_path, task_dir, **kw) -> SwarmConfig:
    settings = {"agents": 2, "max_experiments": 3, **kw}
    return SwarmConfig(
        task=str(task_dir), devices="cpu", budget=1, runs_dir=str(tmp_path / "runs"), **settings
    )


def test_the_best_programs_by_mean_are_re_measured_twice_after_the_agents(tmp_path, store):
    # the start far from the bowl's optimum (LR 0.3), so most proposals beat it
    task_dir = make_task(tmp_path / "t", QUAD_TRAIN.replace("LR = 0.1 ", "LR = 0.02 "))
    config = _config(tmp_path, task_dir, confirm=False, remeasure=0, finalists=2)
    swarm = Swarm(config, store)
    assert swarm.run().errors == []
    mine = store.query_traces(
        TraceQuery(task="quad", swarm_id=swarm.swarm_id, sort="created_at", limit=200)
    ).data
    root = store.get_trace(swarm.baseline_id or "")
    finals = [t for t in mine if t.role == Role.remeasure]
    searched = [
        t for t in mine if t.role != Role.remeasure and t.status in (Status.keep, Status.discard)
    ]
    means: dict[str, list[float]] = {}
    for t in searched:
        if t.fingerprint != root.fingerprint and t.metric is not None:
            means.setdefault(t.fingerprint, []).append(t.metric)
    top = sorted(means, key=lambda fp: fmean(means[fp]))[:2]
    # a big step (far more than 8 noise sds on this bowl) is not re-run at once: it is
    # discarded and left to the finalists (agents.judge.Rules.suspect_to_finals)
    assert [t for t in mine if t.role == Role.confirmation] == []
    held = [t for t in searched if "left to the finalists" in t.reason]
    assert held and all(t.status == Status.discard for t in held)
    # two finalists, the two best means of the search (the root aside), two runs each
    assert len(finals) == 4 and sorted(t.fingerprint for t in finals) == sorted(top * 2)
    assert all(t.status == Status.keep for t in finals)
    assert all(t.hypothesis.startswith("final re-measure") for t in finals)
    # ... after every experiment, each the child of its program's experiment
    experiments = [t for t in mine if t.role == Role.experiment]
    assert min(t.created_at for t in finals) > max(t.created_at for t in experiments)
    for t in finals:
        parent = store.get_trace(t.parent_id or "")
        assert parent.role == Role.experiment and parent.fingerprint == t.fingerprint
    # the champion: the finalist whose two final runs have the best mean, when it beats the
    # start (noise +-0.002 on this bowl: by far or not at all); its experiment is returned
    final_mean = {fp: fmean(t.metric or 0 for t in finals if t.fingerprint == fp) for fp in top}
    best = min(final_mean, key=final_mean.__getitem__)
    start = fmean(t.metric or 0 for t in mine if t.role == Role.baseline and not t.parent_id)
    champion = store.champion("quad", root.hardware, 1.0, swarm_id=swarm.swarm_id)
    assert champion is not None
    if final_mean[best] < start - 0.05:
        assert champion.fingerprint == best and champion.role == Role.experiment
    else:
        assert champion.id == root.id


# each configuration's run off by up to 3, fixed by its knob values (the bowl spans about
# 15 in this box): a lucky run can rank among the best by mean and not by the model
LUCKY = "noise = random.Random(f'{LR}{WIDTH}{WARMUP}{USE_BIAS}{MODE}').uniform(-3, 3)"


def test_finalists_by_model_are_the_best_programs_the_model_predicts(tmp_path, store, caplog):
    train = QUAD_TRAIN.replace("LR = 0.1 ", "LR = 0.02 ")
    noisy = train.replace(
        "noise = random.Random(int(time.time() * 1e6)).uniform(-0.002, 0.002)", LUCKY
    )
    assert noisy != train
    task_dir = make_task(tmp_path / "t", noisy, noise_min=0.01)  # runs repeat exactly
    config = _config(
        tmp_path, task_dir, max_experiments=5, confirm=False, remeasure=0, finalists=2,
        finalists_by="model",
    )  # fmt: skip
    swarm = Swarm(config, store)
    with caplog.at_level(logging.INFO, logger="agents.baseline"):
        assert swarm.run().errors == []
    ranked_by_model = [r for r in caplog.records if "ranked by the model" in r.getMessage()]
    assert len(ranked_by_model) == 1
    [recorded] = [s for s in store.list_swarms("quad") if s.id == swarm.swarm_id]
    assert recorded.config["finalists_by"] == "model"
    space = recorded.config["space"]
    mine = store.query_traces(
        TraceQuery(task="quad", swarm_id=swarm.swarm_id, sort="created_at", limit=200)
    ).data
    finals = [t for t in mine if t.role == Role.remeasure]
    # every measured program of the search, the root (its replicates) included, one
    # point at its mean; the finalists are the two best predictions, the root aside
    runs: dict[str, list[float]] = {}
    program_of: dict[str, Program] = {}
    for t in mine:
        if t.role != Role.remeasure and t.status in (Status.keep, Status.discard):
            if t.metric is not None:
                runs.setdefault(t.fingerprint, []).append(t.metric)
            if t.role == Role.experiment:
                program_of.setdefault(t.fingerprint, swarm.library.for_trace(t))
    program_of[swarm.root.fingerprint] = swarm.root
    keys = list(runs)
    points = [encode(space, knob_values(program_of[fp], space)) for fp in keys]
    means = [fmean(runs[fp]) for fp in keys]
    predicted = dict(zip(keys, predicted_means(points, means), strict=True))
    ranked = sorted((fp for fp in keys if fp != swarm.root.fingerprint), key=predicted.get)
    assert len(keys) >= 6  # the model is fitted (MIN_POINTS), not the means used
    assert len(finals) == 4 and sorted(t.fingerprint for t in finals) == sorted(ranked[:2] * 2)


def test_a_builtin_swarm_with_an_end_re_tests_at_its_end_by_default(tmp_path, store):
    task_dir = make_task(tmp_path / "t", QUAD_TRAIN.replace("LR = 0.1 ", "LR = 0.02 "))
    swarm = Swarm(_config(tmp_path, task_dir), store)
    # settled as the swarm starts and saved with it (a resume keeps the plan)
    assert (swarm.config.retest, swarm.config.confirm, swarm.config.remeasure) == ("end", False, 0)
    assert (swarm.config.finalists, swarm.config.finalists_by) == (1, "model")
    assert swarm.run().errors == []
    saved = json.loads((swarm.directory / "swarm.json").read_text(encoding="utf-8"))
    assert saved["config"]["retest"] == "end" and saved["config"]["finalists"] == 1
    mine = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id, limit=200)).data
    assert [t for t in mine if t.role == Role.confirmation] == []
    finals = [t for t in mine if t.role == Role.remeasure]
    assert len(finals) == 2 and len({t.fingerprint for t in finals}) == 1
    experiments = [t for t in mine if t.role == Role.experiment]
    assert len(experiments) == 6  # 2 agents x 3, the finals beyond them


def test_a_swarm_whose_finals_take_much_of_its_plan_is_warned(tmp_path, store, caplog):
    task_dir = make_task(tmp_path / "t", QUAD_TRAIN)
    with caplog.at_level(logging.WARNING, logger="agents.swarm"):
        Swarm(_config(tmp_path, task_dir, max_experiments=1), store)  # 2 agents x 1 + 1 x 2
    assert "take 2 of this swarm's 4 experiments" in caplog.text
    # 8 agents: 8 of 16 and 8 of 24 (measured behind the study) are warned, 8 of 40 is not
    for each, warned in ((1, True), (2, True), (4, False), (9, False)):
        config = resolve_retest(SwarmConfig(max_experiments=each), 8)
        assert (small_plan_warning(config, 8) is not None) is warned, each
    each = resolve_retest(SwarmConfig(max_experiments=1, retest="each"), 8)
    assert small_plan_warning(each, 8) is None  # no finals


def test_each_keep_is_re_tested_when_asked_or_when_the_end_is_unknown(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    swarm = Swarm(_config(tmp_path, task_dir, max_experiments=1, retest="each"), store)
    assert (swarm.config.confirm, swarm.config.finalists) == (True, 0)
    assert swarm.run().errors == []
    mine = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id, limit=200)).data
    assert [t for t in mine if t.hypothesis.startswith("final re-measure")] == []

    def plan(**kw) -> tuple[str, bool, int, int, str | None]:
        c = resolve_retest(SwarmConfig(**kw), 8)
        return c.retest, c.confirm, c.remeasure, c.finalists, c.finalists_by

    assert plan(max_experiments=10) == ("end", False, 0, 4, "model")
    assert plan(max_experiments=10, agents=1) == ("end", False, 0, 4, "model")  # n_agents rules
    assert resolve_retest(SwarmConfig(max_experiments=10), 1).finalists == 1
    assert plan(max_experiments=10, finalists=2) == ("each", True, 2, 2, "model")
    assert plan(hours=1.0) == ("each", True, 2, 0, "model")  # no end known in experiments
    assert plan() == ("each", True, 2, 0, "model")
    assert plan(max_experiments=10, confirm=False)[:2] == ("each", False)
    assert plan(max_experiments=10, remeasure=1)[0] == "each"
    assert plan(max_experiments=10, moves="neighbour") == ("each", True, 2, 0, "mean")
    # short runs too: measured better re-tested at the end at the same device-seconds
    assert plan(max_experiments=10, short_budget=1.0) == ("end", False, 0, 4, "model")
    assert plan(max_experiments=10, proposer="llm")[0] == "each"
    assert plan(hours=1.0, retest="end", moves="neighbour") == ("end", False, 0, 4, "mean")
    assert plan(max_experiments=10, retest="end", finalists=3)[3] == 3
    assert plan(max_experiments=10, finalists_by="mean")[4] == "mean"
    on_ray = resolve_retest(SwarmConfig(max_experiments=10), 8, cluster=True)
    assert (on_ray.retest, on_ray.finalists) == ("each", 0)
    with pytest.raises(SwarmError, match="retest: 'end' is not run on a Ray cluster"):
        resolve_retest(SwarmConfig(max_experiments=10, retest="end"), 8, cluster=True)
    with pytest.raises(SwarmError, match="retest: 'end' .* give --max-experiments or --hours"):
        resolve_retest(SwarmConfig(retest="end"), 8)
    with pytest.raises(SwarmError, match="retest: 'later' is not one of auto, each, end"):
        Swarm(_config(tmp_path, task_dir, retest="later"), store)


def test_a_swarm_saved_before_the_re_test_plan_resumes_re_testing_each_keep(tmp_path):
    runs = tmp_path / "runs"
    (runs / "old").mkdir(parents=True)
    saved = {k: v for k, v in asdict(SwarmConfig(max_experiments=3)).items() if k != "retest"}
    meta = {"swarm_id": "old", "config": saved}
    (runs / "old" / "swarm.json").write_text(json.dumps(meta), encoding="utf-8")
    home = SwarmHome.open(SwarmConfig(runs_dir=str(runs)), "old")
    assert home.config.retest == "each" and home.config.max_experiments == 3
    assert resolve_retest(home.config, 2).finalists == 0


def test_bad_finalists_are_refused_naming_the_setting(tmp_path, store):
    task_dir = make_task(tmp_path / "t")
    with pytest.raises(SwarmError, match="finalists: -1 must be 0 or more"):
        Swarm(_config(tmp_path, task_dir, finalists=-1), store)
    with pytest.raises(SwarmError, match="finalists_by: 'best' is not one of mean, model"):
        Swarm(_config(tmp_path, task_dir, finalists=2, finalists_by="best"), store)
    with pytest.raises(SwarmError, match="finalists_by: 'model' .* --moves neighbour"):
        Swarm(
            _config(tmp_path, task_dir, finalists=2, finalists_by="model", moves="neighbour"),
            store,
        )
    with pytest.raises(SwarmError, match="finalists: not run on a Ray cluster yet"):
        ClusterSwarm(
            _config(tmp_path, task_dir, finalists=2), ClusterConfig(), store, memory=None,
            serve=lambda *a: None,  # type: ignore[arg-type,return-value]
        )  # fmt: skip


def test_a_lucky_program_among_poor_neighbours_is_a_finalist_by_mean_not_by_model(tmp_path, store):

    task = load_task(make_task(tmp_path / "t"))
    root = Program.read(task.root, task.editable)
    device = cpu_devices(1, threads=1)[0]
    author = Author(task, "sw", "sw/agent-0", device, 1.0)

    def add(program: Program, metric: float, role: Role) -> None:
        store.add_trace(
            author.trace(
                Status.keep if role == Role.baseline else Status.discard,
                fingerprint=program.fingerprint, metric=metric, role=role,
            )
        )  # fmt: skip

    def bowl(lr: float) -> float:  # the quad task's loss at WIDTH 16, no warm-up, mode a
        return (math.log(lr) - math.log(0.3)) ** 2 + 0.1

    for _ in range(2):
        add(root, bowl(0.1), Role.baseline)
    programs: dict[str, Program] = {}
    noise = random.Random(3)
    lrs = [0.025 * 1.2**i for i in range(16)]  # the default box of LR 0.1: 0.025 .. 0.4
    for i, lr in enumerate(lrs):
        program = set_knobs(root, {"LR": lr}, task.knobs)
        programs[program.fingerprint] = program
        # one noisy run each; the one at LR 0.03, far from the optimum, printed a lucky
        # value 0.05 below the best
        metric = bowl(lr) + noise.gauss(0, 0.02) if i != 1 else bowl(0.3) - 0.05
        add(program, metric, Role.experiment)
    lucky = set_knobs(root, {"LR": lrs[1]}, task.knobs).fingerprint
    space = describe_space(search_space(task, root, "cpu"))

    def lrs_of(chosen: list) -> list[float]:
        return [float(knob_values(p, ["LR"])["LR"]) for p, _ in chosen]

    def program_of(t) -> Program:
        return programs[t.fingerprint]

    by_mean = finalists(store, author, root, 2, program_of)
    by_model = finalists(store, author, root, 2, program_of, space=space)
    assert by_mean[0][0].fingerprint == lucky
    assert lucky not in [p.fingerprint for p, _ in by_model]
    assert all(abs(math.log(lr / 0.3)) < 0.5 for lr in lrs_of(by_model))
    assert all(t.role == Role.experiment for _, t in by_model)


def _stopping_factory(config: SwarmConfig, at_call: int, stops: list):
    """The default proposer factory of ``config``, whose ``at_call``-th proposal (counted
    over the swarm's agents) first calls each of ``stops`` (a Ctrl-C, as the CLI does)."""
    import threading

    from agents.swarm import default_proposer_factory

    inner = default_proposer_factory(config)
    calls, lock = [0], threading.Lock()

    def factory(task, root, device, name, seed):
        proposer = inner(task, root, device, name, seed)
        propose = proposer.propose

        def counted(request):
            with lock:
                calls[0] += 1
                now = calls[0] == at_call
            if now:
                for stop in stops:
                    stop()
            return propose(request)

        proposer.propose = counted
        return proposer

    return factory


def test_a_search_stopped_with_finals_pending_still_runs_its_finals(tmp_path, store):
    """The first Ctrl-C of a swarm that re-tests at its end stops the search and runs the
    finals on what it found (recorded stopped: a resume runs the rest of the search)."""
    task_dir = make_task(tmp_path / "t", QUAD_TRAIN.replace("LR = 0.1 ", "LR = 0.02 "))
    config = _config(tmp_path, task_dir, max_experiments=6)
    holder: list[Swarm] = []
    factory = _stopping_factory(config, 5, [lambda: holder[0].stop(search_only=True)])
    swarm = Swarm(config, store, proposer_factory=factory)
    holder.append(swarm)
    assert swarm.config.retest == "end" and swarm.finals_pending
    assert swarm.run().errors == []
    mine = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id, limit=200)).data
    experiments = [t for t in mine if t.role == Role.experiment]
    assert len(experiments) < 12  # 2 agents x 6 asked, the search cut short
    finals = [t for t in mine if t.role == Role.remeasure]
    assert len(finals) == 2 and all(t.status in (Status.keep, Status.discard) for t in finals)
    assert all(t.hypothesis.startswith("final re-measure") for t in finals)
    measured = {t.fingerprint for t in experiments if t.status in (Status.keep, Status.discard)}
    assert {t.fingerprint for t in finals} <= measured
    assert not swarm.finals_pending
    assert store.list_swarms("quad")[0].status == "stopped"
    champion = store.champion("quad", swarm.hardware, swarm.budget, swarm_id=swarm.swarm_id)
    assert champion is not None


def test_a_second_stop_skips_the_finals(tmp_path, store):
    task_dir = make_task(tmp_path / "t", QUAD_TRAIN.replace("LR = 0.1 ", "LR = 0.02 "))
    config = _config(tmp_path, task_dir, max_experiments=6)
    holder: list[Swarm] = []
    stops = [lambda: holder[0].stop(search_only=True), lambda: holder[0].stop()]
    swarm = Swarm(config, store, proposer_factory=_stopping_factory(config, 5, stops))
    holder.append(swarm)
    assert swarm.run().errors == []
    mine = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id, limit=200)).data
    assert [t for t in mine if t.role == Role.remeasure] == []
    assert swarm.finals_pending  # a resume runs the rest of the search, then the finals
    assert store.list_swarms("quad")[0].status == "stopped"


def test_a_swarm_without_finalists_stops_whole_at_a_search_only_stop(tmp_path, store):
    task_dir = make_task(tmp_path / "t", QUAD_TRAIN.replace("LR = 0.1 ", "LR = 0.02 "))
    config = _config(tmp_path, task_dir, max_experiments=6, retest="each")
    holder: list[Swarm] = []
    factory = _stopping_factory(config, 3, [lambda: holder[0].stop(search_only=True)])
    swarm = Swarm(config, store, proposer_factory=factory)
    holder.append(swarm)
    assert not swarm.finals_pending
    assert swarm.run().errors == []
    mine = store.query_traces(TraceQuery(task="quad", swarm_id=swarm.swarm_id, limit=200)).data
    assert [t for t in mine if t.role == Role.remeasure and "final" in t.hypothesis] == []
    assert store.list_swarms("quad")[0].status == "stopped"
